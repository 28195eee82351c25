"""Build settings shared by mixerclient's C++ targets."""

# The core compiles as it must inside Envoy's WebAssembly sandbox: C++17, no exceptions, no RTTI.
MIXERCLIENT_COPTS = [
    "-std=c++17",
    "-fno-exceptions",
    "-fno-rtti",
    "-Wall",
    "-Wextra",
]

def mixerclient_cc_test(name, srcs = None, deps = [], **kwargs):
    """A gtest test of the core, linked with Debian's libgtest.

    Tests are compiled the way gtest itself was (with exceptions and RTTI); they never subclass
    the core's interfaces (they use FunctionTransport and FakeTimeSource), so no RTTI crosses
    into the -fno-rtti library.
    """
    native.cc_test(
        name = name,
        srcs = srcs or [name + ".cc"],
        copts = ["-std=c++17", "-Wall"],
        deps = ["//mixerclient"] + deps,
        linkopts = ["-lgtest", "-lgtest_main", "-pthread"],
        **kwargs
    )
