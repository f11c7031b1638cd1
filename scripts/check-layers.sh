#!/usr/bin/env bash
# Checks the layer rules of ARCHITECTURE.md: a folder of Sources/Philote may use the types of the folders
# its rule lists, and no others. Swift has one module here, so the compiler allows any reference; this is
# what keeps, say, the hub from holding a Connection again.
#
# How: each folder's types are the top-level `class|struct|enum|protocol|actor|typealias NAME` in its files
# (nested types and extensions declare nothing here). Each folder's files are then searched for whole-word
# uses of the types of every folder it may not use, outside comments and string literals. Approximate by
# design (it reads words, not Swift), which is enough for UpperCamelCase type names.
#
# Usage: scripts/check-layers.sh [ROOT]   (ROOT: a tree holding Sources/Philote; default: this repository)
# Exit 0 when every rule holds, 1 with one line per broken use otherwise, 2 on a usage problem.
set -euo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
sources="$root/Sources/Philote"
if [[ ! -d "$sources" ]]; then
    echo "check-layers: no Sources/Philote under $root" >&2
    exit 2
fi

# What each folder may use besides itself. Keep in step with the table in ARCHITECTURE.md. The executable
# (Sources/philote) may use anything and is not checked; files directly in Sources/Philote (the version) belong
# to no layer and may be used by all.
protocol_layer="HTTP WebSocket Compression JSON Auth"
declare -A may_use=(
    [System]=""
    [Logging]=""
    [Reactor]="System Logging"
    [TLS]="System Logging Reactor"
    [HTTP]="$protocol_layer"
    [WebSocket]="$protocol_layer"
    [Compression]="$protocol_layer"
    [JSON]="$protocol_layer"
    [Auth]="$protocol_layer"
    [Client]="$protocol_layer"
    [Bench]="$protocol_layer"
    [Broker]="System Logging Reactor $protocol_layer History"
    [History]="System Logging Reactor $protocol_layer"
    [Metrics]="System Logging Reactor $protocol_layer Broker History"
    [PubSub]="System Logging Reactor $protocol_layer Metrics History"
    [Server]="System Logging Reactor TLS $protocol_layer Broker Metrics History PubSub"
)

folders=()
for path in "$sources"/*/; do
    folder=$(basename "$path")
    if [[ -z ${may_use[$folder]+set} ]]; then
        echo "check-layers: Sources/Philote/$folder/ has no layer rule: add it here and to ARCHITECTURE.md" >&2
        exit 1
    fi
    folders+=("$folder")
done

# Comment lines go first (a doc comment may hold an unpaired quote), then string literals, then what is left
# after a `//` (a URL inside a string is gone by then). Line numbers are kept: dropped text leaves its line.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for folder in "${folders[@]}"; do
    mkdir -p "$work/$folder"
    while IFS= read -r -d '' file; do
        relative=${file#"$sources/$folder/"}
        mkdir -p "$work/$folder/$(dirname "$relative")"
        sed -E -e 's#^[[:space:]]*//.*$##' -e 's/"([^"\\]|\\.)*"/""/g' -e 's#//.*$##' "$file" \
            >"$work/$folder/$relative"
    done < <(find "$sources/$folder" -name '*.swift' -print0)
done

declare -A owner=()  # type name -> the folder that declares it
declare -A types=()  # folder -> its type names, separated by |
declaration='^((public|package|internal|fileprivate|private|open|final|indirect|nonisolated|@[A-Za-z_]+(\([^)]*\))?)[[:space:]]+)*(class|struct|enum|protocol|actor|typealias)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*).*'
type_count=0
for folder in "${folders[@]}"; do
    names=$(find "$work/$folder" -name '*.swift' -exec cat {} + | sed -nE "s/$declaration/\\5/p" | sort -u)
    for name in $names; do
        owner[$name]=$folder
        types[$folder]+="${types[$folder]:+|}$name"
        type_count=$((type_count + 1))
    done
done

broken=0
rules=0
for folder in "${folders[@]}"; do
    forbidden=()
    for other in "${folders[@]}"; do
        [[ $other == "$folder" || " ${may_use[$folder]} " == *" $other "* ]] && continue
        rules=$((rules + 1))
        [[ -n ${types[$other]:-} ]] && forbidden+=("${types[$other]}")
    done
    [[ ${#forbidden[@]} -eq 0 ]] && continue
    pattern=$(IFS='|'; echo "${forbidden[*]}")
    # Not after a dot: `Something.Status` names a nested type, whoever else declares a top-level `Status`.
    while IFS= read -r hit; do
        file=${hit%%:*}
        rest=${hit#*:}
        line=${rest%%:*}
        match=${rest#*:}
        name=${match#"${match%%[A-Za-z_]*}"}
        echo "layer rule \"$folder/ must not use ${owner[$name]}/ types\" broken:" \
            "Sources/Philote/$folder/${file#"$work/$folder/"}:$line uses $name"
        broken=$((broken + 1))
    done < <(grep -rnoE "(^|[^.A-Za-z0-9_])($pattern)\\b" "$work/$folder" --include='*.swift' || true)
done

if ((broken > 0)); then
    echo "check-layers: $broken use(s) across layers that ARCHITECTURE.md forbids (see its table of layers)" >&2
    exit 1
fi
echo "check-layers: ${#folders[@]} folders, $type_count types, $rules rules: all hold"
