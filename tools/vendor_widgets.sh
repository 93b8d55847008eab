#!/usr/bin/env bash
# Re-fetch the JavaScript that renders ipywidgets in the built book, so pages work offline.
#
# By default myst-nb makes every page that holds a widget load RequireJS and the widget manager from two
# CDNs (cdnjs, jsdelivr); with no network the widget area stays blank. We vendor both into
# book/_static/vendor/ and point `sphinx.config.nb_ipywidgets_js` in _config.yml at them.
#
#   @jupyter-widgets/html-manager  1.0.x  dist/embed-amd.js  (the ipywidgets 8 manager: base, controls,
#                                          output, all bundled; BSD-3-Clause) plus its Font Awesome 5 .woff2
#                                          fonts (SIL OFL 1.1), which its CSS loads from beside the script
#   requirejs                      2.3.x  require.js         (AMD loader that embed-amd.js needs; MIT)
#
# Only woff2 fonts are kept: every browser that runs the widget manager reads woff2, and the other formats
# (eot, ttf, svg, woff) would add 2.7 MB. Needs npm (the registry only, `npm pack`); run from anywhere:
#   tools/vendor_widgets.sh            # the pinned versions below
#   HTML_MANAGER=1.0.16 tools/vendor_widgets.sh   # try another 1.0.x, then rebuild and run the browser test
set -euo pipefail

HTML_MANAGER="${HTML_MANAGER:-1.0.15}"
REQUIREJS="${REQUIREJS:-2.3.8}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/book/_static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
# npm pack downloads the published tarball and checks it against the registry's integrity hash.
npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" "requirejs@$REQUIREJS" >/dev/null
mkdir hm rq
tar -xzf "jupyter-widgets-html-manager-$HTML_MANAGER.tgz" -C hm
tar -xzf "requirejs-$REQUIREJS.tgz" -C rq

rm -rf "$DEST"
mkdir -p "$DEST/html-manager" "$DEST/requirejs"
cp hm/package/dist/embed-amd.js "$DEST/html-manager/"
cp hm/package/dist/*.woff2 "$DEST/html-manager/"
cp rq/package/require.js "$DEST/requirejs/"

# Every font file the script names in woff2 format must be there (the file names are content hashes).
for font in $(grep -o '[0-9a-f]\{20\}\.woff2' "$DEST/html-manager/embed-amd.js" | sort -u); do
  test -f "$DEST/html-manager/$font" || { echo "missing font $font" >&2; exit 1; }
done

integrity() { npm view "$1" dist.integrity 2>/dev/null || echo "(not looked up)"; }
{
  echo "# Vendored widget JavaScript (written by tools/vendor_widgets.sh; do not edit by hand)"
  echo
  echo "| package | version | license | npm integrity |"
  echo "| --- | --- | --- | --- |"
  echo "| @jupyter-widgets/html-manager | $HTML_MANAGER | BSD-3-Clause (Font Awesome fonts: SIL OFL 1.1) | $(integrity "@jupyter-widgets/html-manager@$HTML_MANAGER") |"
  echo "| requirejs | $REQUIREJS | MIT | $(integrity "requirejs@$REQUIREJS") |"
  echo
  echo "SHA-256 of the files:"
  echo
  echo '```'
  (cd "$DEST" && find . -type f ! -name VERSIONS.md | sort | xargs sha256sum)
  echo '```'
} > "$DEST/VERSIONS.md"

du -sh "$DEST"
