"""Writes the C++ table of Mixer's global word list from api/mixer/v1/global_dictionary.yaml.

Used by the Bazel genrule `//mixerclient:global_dictionary_data` and by tools/setup.sh.
The words are read exactly as Mixer reads them (every line starting with `-`, the raw text
after it, stripped, quotes kept: the words are literally `'200'` and `"-"`), so the C++
client and the Python server index the same list. Besides the words in index order, the
table holds their indexes sorted by word, for a binary-search lookup that needs no start-up
work inside the WebAssembly sandbox.
"""

from __future__ import annotations

import argparse
import pathlib
import sys


def parse_words(text: str) -> list[str]:
    return [line[1:].strip() for line in text.splitlines() if line.startswith("-")]


def c_string(word: str) -> str:
    out = []
    for byte in word.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def render(words: list[str], source: str) -> str:
    first: dict[str, int] = {}
    for i, word in enumerate(words):
        first.setdefault(word, i)  # a repeated word keeps the index a lookup finds first
    order = sorted(first.values(), key=lambda i: words[i].encode("utf-8"))
    lines = [
        f"// Generated from {source} by mixerclient/gen_global_dictionary.py. Do not edit.",
        f"// {len(words)} words.",
        "constexpr std::string_view kGlobalWords[] = {",
        *(f"    {c_string(w)}," for w in words),
        "};",
        "// Indexes into kGlobalWords, sorted by word (bytewise).",
        "constexpr int32_t kSortedWordIndexes[] = {",
        *(f"    {i}," for i in order),
        "};",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("yaml", type=pathlib.Path, help="global_dictionary.yaml")
    parser.add_argument("-o", "--output", type=pathlib.Path, help="output file (default stdout)")
    args = parser.parse_args(argv)
    words = parse_words(args.yaml.read_text(encoding="utf-8"))
    if not words:
        print(f"{args.yaml}: no words (lines starting with '-')", file=sys.stderr)
        return 1
    text = render(words, "api/mixer/v1/global_dictionary.yaml")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
