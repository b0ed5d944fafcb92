#!/usr/bin/env bash
# Run every bench/bench_*.py with the python given first. Each further argument
# NAME=ARG+ARG+... gives the arguments of one of them (bench_fanout.py=--devices+1000).
set -euo pipefail
python=$1; shift
declare -A args=()
for spec in "$@"; do args[${spec%%=*}]=${spec#*=}; done
for bench in bench/bench_*.py; do
  name=$(basename "$bench")
  extra=()
  if [[ -n ${args[$name]:-} ]]; then
    IFS=+ read -r -a extra <<< "${args[$name]}"
  fi
  echo "# $name ${extra[*]:-}"
  "$python" "$bench" "${extra[@]}"
done
