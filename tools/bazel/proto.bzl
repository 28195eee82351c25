"""py_proto_library: .proto files compiled to Python by grpcio-tools' protoc."""

ProtoSourcesInfo = provider(
    doc = "The .proto files a library was compiled from, with those of its dependencies.",
    fields = {"transitive": "depset of .proto files"},
)

def _py_proto_library_impl(ctx):
    transitive = depset(
        ctx.files.srcs,
        transitive = [dep[ProtoSourcesInfo].transitive for dep in ctx.attr.deps],
    )
    outputs = []
    for src in ctx.files.srcs:
        stem = src.basename[:-len(".proto")]
        outputs.append(ctx.actions.declare_file(stem + "_pb2.py"))
        outputs.append(ctx.actions.declare_file(stem + "_pb2.pyi"))
        if ctx.attr.grpc:
            outputs.append(ctx.actions.declare_file(stem + "_pb2_grpc.py"))

    args = ctx.actions.args()
    args.add("--python_out=" + ctx.bin_dir.path)
    args.add("--pyi_out=" + ctx.bin_dir.path)
    if ctx.attr.grpc:
        args.add("--grpc_python_out=" + ctx.bin_dir.path)
    args.add_all(ctx.files.srcs)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = transitive,
        outputs = outputs,
        mnemonic = "PyProtoc",
        progress_message = "Compiling protos of %s" % ctx.label,
    )
    py_outputs = [f for f in outputs if f.extension == "py"]

    # The sources ship too: pkg/config/protodoc.py reads their comments at run time.
    runfiles = ctx.runfiles(files = py_outputs + ctx.files.srcs)
    for dep in ctx.attr.deps:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(files = depset(outputs), runfiles = runfiles),
        ProtoSourcesInfo(transitive = transitive),
        PyInfo(
            transitive_sources = depset(
                py_outputs,
                transitive = [dep[PyInfo].transitive_sources for dep in ctx.attr.deps],
            ),
        ),
    ]

py_proto_library = rule(
    implementation = _py_proto_library_impl,
    doc = "Compiles srcs to <name>_pb2.py (and _pb2_grpc.py when grpc = True) beside them.",
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], mandatory = True),
        "deps": attr.label_list(providers = [ProtoSourcesInfo, PyInfo]),
        "grpc": attr.bool(default = False, doc = "also generate gRPC stubs"),
        "_protoc": attr.label(
            default = "//tools/protoc",
            executable = True,
            cfg = "exec",
        ),
    },
)
