"""Where the Mixer filter module (mixer_filter.wasm) is, for whoever configures Envoys with it.

Under Bazel it is a data dependency beside this file in the runfiles tree; from the source
tree it is Bazel's output (`bazel build //proxy/extensions/mixer:mixer_filter`, which
`make bookinfo` runs). MIXER_FILTER_WASM overrides both.
"""

from __future__ import annotations

import os
import pathlib

NAME = "mixer_filter.wasm"
# `absolute()`, not `resolve()`: under Bazel this file is a symlink in the runfiles tree.
_RUNFILES = pathlib.Path(__file__).absolute().parent / NAME
_ROOT = pathlib.Path(__file__).resolve().parents[3]
_BUILT = _ROOT / "bazel-bin/proxy/extensions/mixer" / NAME
# bazel-bin follows the last build's configuration (`-c opt` moves it); the module is the
# same in every one, so the newest output of any configuration is the one to use.
_OUTPUTS = "bazel-out/*/bin/proxy/extensions/mixer/" + NAME
BUILD_COMMAND = "bazel build //proxy/extensions/mixer:mixer_filter"


def module_path() -> pathlib.Path:
    """The module's real path (Envoy reads it whenever a listener with the filter loads)."""
    override = os.environ.get("MIXER_FILTER_WASM")
    candidates = (
        [pathlib.Path(override)]
        if override
        else [_RUNFILES, *sorted(_ROOT.glob(_OUTPUTS), key=_newest_first), _BUILT]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"the Mixer filter module is not built (looked for {', '.join(map(str, candidates))}); "
        f"run: {BUILD_COMMAND}"
    )


def _newest_first(path: pathlib.Path) -> float:
    return -path.stat().st_mtime
