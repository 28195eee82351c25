"""What a container running as a user of its own needs of the pod's folder on the host.

A Kubernetes container sees its volumes through mounts, whoever owns the host's folders; the
local runtime has no mount namespaces for them, so a container that runs as a user (the
sidecar as Istio's istio-proxy, 1337) reaches its files only if every folder above them lets
that user through. The kubelet checks that before it starts such a container (a clear
error, not an Envoy that cannot read its bootstrap) and gives the container its own writable
folder, `<pod folder>/<container name>` (an emptyDir's stand-in: the sidecar's run
directory, `{pod_dir}/istio-proxy` in the image table), owned by its uid and gid, 0750.
"""

from __future__ import annotations

import os
import pathlib
import stat

RUN_DIR_MODE = 0o750


def unreachable(path: pathlib.Path, uid: int, gid: int) -> str:
    """Why `uid`/`gid` cannot reach `path` through its folders ("" when it can). Folders not
    made yet are not judged (whoever makes them, the node agent a socket's, decides)."""
    if uid == 0:
        return ""
    current = pathlib.Path(path).absolute()
    for folder in [*reversed(current.parents), current]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            return ""
        except OSError as error:
            return f"{folder}: {error.strerror}"
        mode = info.st_mode
        if info.st_uid == uid:
            allowed = bool(mode & stat.S_IXUSR)
        elif info.st_gid == gid:
            allowed = bool(mode & stat.S_IXGRP)
        else:
            allowed = bool(mode & stat.S_IXOTH)
        if not allowed:
            return (
                f"{folder} ({stat.filemode(mode)}, owner {info.st_uid}:{info.st_gid}) does not let "
                f"uid {uid} gid {gid} through to {path}"
            )
    return ""


def own_folder(pod_dir: pathlib.Path, container: str, uid: int, gid: int) -> pathlib.Path:
    """`<pod_dir>/<container>`, made (or taken over) for uid/gid; raises OSError."""
    folder = pod_dir / container
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, uid, gid)
    folder.chmod(RUN_DIR_MODE)
    return folder
