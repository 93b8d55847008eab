#!/bin/bash
# Commit the result files of finished jobs: every new or changed file under results/, except those in a stage
# folder that Snakemake flags incomplete (its job is still running, or was killed and will be redone).
#   tools/commit_finished.sh ["commit message"]
set -u
cd "$(dirname "$0")/.."
busy=$(for f in .snakemake/incomplete/*; do [ -e "$f" ] || continue; basename "$f" | base64 -d 2>/dev/null; echo; done \
       | grep '^results/' | sed -E 's#^(results/[^/]+/[^/]+/(seed_[0-9]+|super)/[^/]+)/.*#\1#' | sort -u)
files=$(git ls-files --others --modified --exclude-standard results/ | while read -r f; do
  skip=0; for b in $busy; do case "$f" in "$b"/*) skip=1;; esac; done; [ $skip = 0 ] && echo "$f"; done)
if [ -z "$files" ]; then echo "nothing finished to commit"; exit 0; fi
echo "$files" | xargs git add --
echo "$files" | xargs git commit -q -m "${1:-Results of finished runs}" -- && echo "committed $(echo "$files" | wc -l) files"
[ -n "$busy" ] && echo "still running: $busy"
exit 0
