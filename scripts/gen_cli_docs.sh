#!/usr/bin/env bash
# Writes docs/cli.md from the `--help` of every badam command, so the reference never drifts
# from the program. `--check BADAM` compares instead of writing (the test suite runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=write
if [ "${1:-}" = "--check" ]; then MODE=check; shift; fi
BADAM=${1:-./build/badam}
COMMANDS="demo compare train plan inspect tokenize generate eval report"
render() {
  echo "# badam command-line reference"
  echo
  echo "Generated from \`badam <command> --help\` by \`scripts/gen_cli_docs.sh\`; a test checks it is"
  echo "current. Run any command with \`--help\` for the same text."
  echo
  echo '```'
  OMP_WAIT_POLICY=passive "$BADAM" --help
  echo '```'
  for c in $COMMANDS; do
    echo
    echo "## badam $c"
    echo
    echo '```'
    OMP_WAIT_POLICY=passive "$BADAM" "$c" --help
    echo '```'
  done
}
if [ "$MODE" = write ]; then
  render > docs/cli.md
  echo "wrote docs/cli.md"
else
  if ! diff -u docs/cli.md <(render); then
    echo "docs/cli.md is out of date: run scripts/gen_cli_docs.sh" >&2
    exit 1
  fi
fi
