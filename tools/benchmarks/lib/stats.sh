# Samples and their medians. Every sample is one line "metric<TAB>datapath<TAB>value" in
# $RESULTS; the report takes medians over the rounds.

record() {
  local metric=$1 dp=$2 value=$3
  [[ -n $value ]] || { log "no value for $metric ($dp)"; return 0; }
  printf '%s\t%s\t%s\n' "$metric" "$dp" "$value" >>"$RESULTS"
  log "  $metric [$dp] = $value"
}

# median of the numbers on stdin (empty when none).
median() {
  sort -g | awk '{a[NR] = $1} END {
    if (NR == 0) exit
    if (NR % 2) printf "%.6g\n", a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# med METRIC DATAPATH: median of the recorded samples.
med() { awk -F'\t' -v k="$1" -v d="$2" '$1 == k && $2 == d {print $3}' "$RESULTS" | median; }
# range METRIC DATAPATH: "min-max" of the recorded samples.
range() {
  awk -F'\t' -v k="$1" -v d="$2" '$1 == k && $2 == d {print $3}' "$RESULTS" | sort -g |
    awk 'function f(v) { return v >= 1000 ? sprintf("%.0f", v) : sprintf("%.3g", v) }
         NR == 1 {lo = $1} {hi = $1} END { if (NR) print f(lo) "-" f(hi) }'
}
# samples METRIC DATAPATH: how many samples the median is taken over.
samples() { awk -F'\t' -v k="$1" -v d="$2" '$1 == k && $2 == d' "$RESULTS" | wc -l; }

# kv KEY LINE: the value of KEY=value in a tool's output line.
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n1; }

# ratio A B: A/B to 2 decimals, "n/a" when either is missing or B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# share P C: a sample's rate P as a share of a reference rate C (ceiling, limit), to 3 decimals;
# empty when C is 0.
share() { awk -v p="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.3f\n", p / c }'; }
# cost_beyond P C: what a packet at rate P costs beyond one at rate C, in ns (1/P - 1/C).
cost_beyond() { awk -v p="$1" -v c="$2" 'BEGIN { if (p > 0 && c > 0) printf "%.0f\n", 1e9 / p - 1e9 / c }'; }

# fmt VALUE: a readable number (3 significant digits, thousands kept whole).
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else if (v >= 1000) printf "%.0f\n", v; else printf "%.3g\n", v }'; }

# percentile P: the P-th percentile (0..100) of the numbers on stdin (nearest rank).
percentile() {
  sort -g | awk -v p="$1" '{a[NR] = $1} END {
    if (NR == 0) exit
    i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print a[i] }'
}
