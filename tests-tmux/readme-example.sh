#!/bin/bash
# Runs an example of the README as written, each "# terminal N" in a tmux terminal of its own
# with a shell in the repository root, and checks the screens show what the README shows.
# Usage: tests-tmux/readme-example.sh NAME PORT
#   NAME: the example's marker, the README line `<!-- example: NAME -->` (or
#   `<!-- example: NAME (a note) -->`) right above its block.
#   PORT: a free loopback TCP port, put in place of the README's 4444.
# In the block:
#   `# terminal N...`        the lines below happen in terminal N (started on first use)
#   `# ...Ctrl-a c...`       presses Ctrl-a c there (other `#` lines are comments)
#   `$ COMMAND`              typed at the shell; the next line waits until it runs in raw mode
#   `(monitor) COMMAND`      typed at the monitor
#   `...`                    more of the same lines, not checked
#   anything else            must appear on that terminal, after what was checked before
#                            there, whole; digits stand for any number
set -u
cd "$(dirname "$0")/.."
NAME=$1 PORT=$2
SESSION=none
. tests-tmux/lib.sh
trap kill_sessions EXIT

block=$(awk -v name="$NAME" '
    $0 == "<!-- example: " name " -->" || index($0, "<!-- example: " name " (") == 1 { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' README.md)
[ -n "$block" ] || { echo "FAIL: README.md has no example $NAME"; exit 1; }

declare -A checked_row  # per terminal: the history row of the last line checked
use_terminal() {
    SESSION=readme-$1
    if ! tmx has-session -t "$SESSION" 2>/dev/null; then
        new_session "$SESSION" "env -i PATH=$PATH HOME=$HOME TERM=xterm SWIFTKVM_HISTORY= PS1='$ ' bash --norc --noprofile" 200
        checked_row[$SESSION]=0
    fi
}
# shows_after ROW REGEX: a history row after ROW matches REGEX in full; prints its number.
shows_after() { history | PATTERN="^$2\$" awk -v after="$1" 'NR > after && $0 ~ ENVIRON["PATTERN"] { print NR; found = 1; exit } END { exit !found }'; }
expect() {
    local pattern row
    pattern=$(printf '%s' "$1" | sed -e 's/[][\.*^$+?(){}|/]/\\&/g' -e 's/[0-9][0-9]*/[0-9]+/g')
    if wait_for "terminal ${SESSION#readme-} shows: $1" shows_after "${checked_row[$SESSION]}" "$pattern"; then
        row=$(shows_after "${checked_row[$SESSION]}" "$pattern")
        checked_row[$SESSION]=$row
    fi
}

while IFS= read -r line; do
    case "$line" in
        "") ;;
        "# terminal "*) number=${line#"# terminal "}; use_terminal "${number%%[^0-9]*}" ;;
        "#"*"Ctrl-a c"*) keys C-a c ;;
        "#"*) ;;
        "...") ;;
        '$ '*)
            keys -l "${line#'$ '}"; keys Enter
            wait_for "terminal ${SESSION#readme-} runs: ${line#'$ '}" in_raw_mode ;;
        "(monitor) "*)
            keys -l "${line#'(monitor) '}"; keys Enter
            expect "$line" ;;
        *) expect "$line" ;;
    esac
done < <(printf '%s\n' "$block" | sed "s/4444/$PORT/g")

finish
