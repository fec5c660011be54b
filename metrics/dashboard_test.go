package metrics

// This test keeps the Grafana dashboard (deploy/grafana/pgcrypt-proxy.json)
// and the Prometheus rules (deploy/prometheus/alerts.yml) in step with the
// metrics this package exports: a renamed metric or label otherwise turns a
// panel blank or an alert silent without anyone noticing.
//
// What the proxy exports is read from a real registry, not from a list kept
// here. New and WatchAnalysisCache register on a Registerer that remembers
// every collector. A vec without children exports nothing, and the prometheus
// package offers no accessor for a Desc's label names (Desc.String is a debug
// format, not an API), so each vec gets one child through its own
// GetMetricWithLabelValues, called with 0, 1, 2, ... values until the vec
// accepts the count; every collector must then export at least one metric.
// Registry.Gather then gives each family's name, type and label names, as
// Prometheus would scrape them. Histograms are exposed as _bucket (plus le),
// _sum and _count. Scraping adds the target labels job, namespace, pod, app
// and instance (prometheus.yml, podmonitor.yaml).
//
// A gather before the vecs are touched also gives the label values New
// exports at zero (error kinds, reload and audit results, crypto ops, ...):
// a matcher on such a label must use one of them.
//
// Expressions are read with a small PromQL tokenizer, not a full parser:
// an identifier followed by "(" is a function or aggregation; any other
// identifier that is not a keyword is a series name, optionally followed by
// {label matchers}; by/without/on/ignoring/group_left/group_right take a
// label list. Range and subquery brackets, strings outside matchers,
// numbers and Grafana variables ($__rate_interval) are skipped.

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

const (
	dashboardFile = "../deploy/grafana/pgcrypt-proxy.json"
	alertsFile    = "../deploy/prometheus/alerts.yml"
	proxyJob      = "pgcrypt-proxy"
)

// targetLabels are attached by Prometheus to every scraped series.
var targetLabels = []string{"job", "namespace", "pod", "app", "instance"}

// standardSeries are not defined by this package but exported by every
// pgcrypt-proxy target: up by Prometheus, the process collector by serve.
var standardSeries = []string{"up", "process_cpu_seconds_total"}

// dashboardVars are the dashboard's template variables: every panel query
// filters on each of them that the series has as a label.
var dashboardVars = []string{"namespace", "app", "pod"}

// recordingRegisterer registers on a real registry and remembers what it
// registered, so the test can give every vec a child.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// catalog is what an expression may select.
type catalog struct {
	labels   map[string]set            // series name → label names, target labels included
	family   map[string]string         // exported series name → family name
	values   map[string]map[string]set // family → label → values New exports
	recorded map[string]set            // recorded series (alerts.yml) → label names
}

type set map[string]bool

func newSet(names ...string) set {
	s := set{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

func (s set) sorted() []string {
	var l []string
	for n := range s {
		l = append(l, n)
	}
	sort.Strings(l)
	return l
}

func exportedCatalog(t *testing.T) *catalog {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	m, err := New(rec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.WatchAnalysisCache(func() (uint64, uint64) { return 0, 0 }); err != nil {
		t.Fatalf("WatchAnalysisCache: %v", err)
	}

	c := &catalog{labels: map[string]set{}, family: map[string]string{}, values: map[string]map[string]set{}, recorded: map[string]set{}}

	// Label values exported before any traffic.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if c.values[mf.GetName()] == nil {
					c.values[mf.GetName()] = map[string]set{}
				}
				if c.values[mf.GetName()][lp.GetName()] == nil {
					c.values[mf.GetName()][lp.GetName()] = set{}
				}
				c.values[mf.GetName()][lp.GetName()][lp.GetValue()] = true
			}
		}
	}

	// One child for every vec, then every collector must export something.
	for _, col := range rec.collectors {
		get := reflect.ValueOf(col).MethodByName("GetMetricWithLabelValues")
		if get.IsValid() {
			made := false
			for n := 0; n <= 16 && !made; n++ {
				vals := make([]string, n)
				for i := range vals {
					vals[i] = "x"
				}
				out := get.CallSlice([]reflect.Value{reflect.ValueOf(vals)})
				made = out[len(out)-1].IsNil()
			}
			if !made {
				t.Fatalf("cannot create a child of %T with 0 to 16 label values", col)
			}
		}
		ch := make(chan prometheus.Metric)
		go func() { col.Collect(ch); close(ch) }()
		n := 0
		for range ch {
			n++
		}
		if n == 0 {
			t.Fatalf("%T exports no metric: the test cannot see its name and labels", col)
		}
	}

	mfs, err = reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		own := newSet(targetLabels...)
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				own[lp.GetName()] = true
			}
		}
		name := mf.GetName()
		add := func(series string, extra ...string) {
			s := newSet(extra...)
			for l := range own {
				s[l] = true
			}
			c.labels[series] = s
			c.family[series] = name
		}
		switch mf.GetType().String() {
		case "HISTOGRAM":
			add(name+"_bucket", "le")
			add(name + "_sum")
			add(name + "_count")
		case "SUMMARY":
			add(name, "quantile")
			add(name + "_sum")
			add(name + "_count")
		default:
			add(name)
		}
	}
	for _, s := range standardSeries {
		c.labels[s] = newSet(targetLabels...)
	}
	return c
}

func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	c := exportedCatalog(t)
	if len(c.labels) < 20 {
		t.Fatalf("only %d series found in the registry: the catalog is broken", len(c.labels))
	}

	// alerts.yml: first the recording rules (in file order, so a rule may
	// use an earlier one), then every expression.
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	nrules := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			nrules++
			where := fmt.Sprintf("%s: alert %s", alertsFile, r.Alert)
			if r.Record != "" {
				where = fmt.Sprintf("%s: record %s", alertsFile, r.Record)
			}
			for _, p := range c.check(r.Expr, "") {
				t.Errorf("%s: %s\n\texpr: %s", where, p, oneLine(r.Expr))
			}
			if r.Record != "" {
				c.recorded[r.Record] = c.recordedLabels(r.Expr)
			}
		}
	}
	if nrules == 0 {
		t.Fatalf("%s: no rules found", alertsFile)
	}

	// The dashboard: every "expr" (panel targets, annotations) and every
	// query variable.
	raw, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	nexpr := 0
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = fmt.Sprintf("panel %q", title)
			} else if name, ok := v["name"].(string); ok {
				where = fmt.Sprintf("annotation %q", name)
			}
			for k, e := range v {
				if k == "templating" {
					continue
				}
				if s, ok := e.(string); ok && k == "expr" {
					nexpr++
					for _, p := range c.check(s, "panel") {
						t.Errorf("%s: %s: %s\n\texpr: %s", dashboardFile, where, p, oneLine(s))
					}
					continue
				}
				walk(e, where)
			}
		case []any:
			for _, e := range v {
				walk(e, where)
			}
		}
	}
	walk(dash, "dashboard")
	if nexpr < 10 {
		t.Fatalf("%s: only %d expr found: the dashboard's layout has changed, update this test", dashboardFile, nexpr)
	}

	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	nvars := 0
	for _, v := range vars {
		v, _ := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		nvars++
		var q string
		switch qv := v["query"].(type) {
		case string:
			q = qv
		case map[string]any:
			q, _ = qv["query"].(string)
		}
		if q == "" {
			q, _ = v["definition"].(string)
		}
		for _, p := range c.checkVariable(q) {
			t.Errorf("%s: variable %q: %s\n\tquery: %s", dashboardFile, v["name"], p, q)
		}
	}
	if nvars < len(dashboardVars) {
		t.Errorf("%s: %d query variables, want at least %v", dashboardFile, nvars, dashboardVars)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// labelsOf returns the labels a series selected by name may have, and
// whether the name is known.
func (c *catalog) labelsOf(name string) (set, bool) {
	if l, ok := c.recorded[name]; ok {
		return l, true
	}
	l, ok := c.labels[name]
	return l, ok
}

// recordedLabels returns the labels of the series a recording rule writes:
// those of its by clauses if it aggregates (le dropped by a
// histogram_quantile), otherwise those of the series it reads.
func (c *catalog) recordedLabels(expr string) set {
	p, err := parsePromQL(expr)
	if err != nil {
		return set{}
	}
	out, byFound := set{}, false
	for _, g := range p.groups {
		if g.kw == "by" {
			byFound = true
			for _, l := range g.labels {
				out[l] = true
			}
		}
	}
	if byFound {
		if strings.HasPrefix(strings.TrimSpace(expr), "histogram_quantile") {
			delete(out, "le")
		}
		return out
	}
	for _, s := range p.sels {
		if l, ok := c.labelsOf(s.name); ok {
			for n := range l {
				out[n] = true
			}
		}
	}
	return out
}

// check returns the problems of one expression. With mode "panel", every
// selector must also filter on job and the dashboard's variables.
func (c *catalog) check(expr, mode string) []string {
	p, err := parsePromQL(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var probs []string
	all := set{}
	for _, s := range p.sels {
		labels, ok := c.labelsOf(s.name)
		switch {
		case ok:
		case strings.Contains(s.name, ":"):
			probs = append(probs, fmt.Sprintf("recorded series %s is not defined by a record: in %s", s.name, alertsFile))
			continue
		case strings.HasPrefix(s.name, "pgcrypt_"):
			probs = append(probs, fmt.Sprintf("metric %s is not exported by package metrics (New, WatchAnalysisCache); exported families (histograms add _bucket, _sum, _count): %s", s.name, c.pgcryptNames()))
			continue
		default:
			probs = append(probs, fmt.Sprintf("series %s is neither a pgcrypt_ metric, a recorded series, nor one of %v", s.name, standardSeries))
			continue
		}
		for l := range labels {
			all[l] = true
		}
		has := map[string]matcher{}
		for _, m := range s.matchers {
			has[m.label] = m
			if !labels[m.label] {
				probs = append(probs, fmt.Sprintf("%s has no label %q (it has %v)", s.name, m.label, labels.sorted()))
				continue
			}
			if bad := c.unknownValues(s.name, m); len(bad) > 0 {
				probs = append(probs, fmt.Sprintf("%s{%s%s%q}: %v is not a %s value New exports (%v)",
					s.name, m.label, m.op, m.value, bad, m.label, c.values[c.family[s.name]][m.label].sorted()))
			}
		}
		_, recorded := c.recorded[s.name]
		if mode == "panel" || mode == "variable" || !recorded {
			if m, ok := has["job"]; !ok || m.op != "=" || m.value != proxyJob {
				probs = append(probs, fmt.Sprintf("%s does not select job=%q", s.name, proxyJob))
			}
		}
		if mode == "panel" {
			for _, v := range dashboardVars {
				if m, ok := has[v]; labels[v] && (!ok || m.op != "=~" || m.value != "$"+v) {
					probs = append(probs, fmt.Sprintf("%s does not filter on %s=~\"$%s\"", s.name, v, v))
				}
			}
		}
	}
	for _, g := range p.groups {
		// by and without apply to their aggregation's argument; on,
		// ignoring and group_* to both sides of a binary operator: check
		// them against the labels of the series they can see.
		scope := all
		if g.kw == "by" || g.kw == "without" {
			scope = set{}
			for _, s := range p.sels {
				if s.pos > g.argStart && s.pos < g.argEnd {
					l, _ := c.labelsOf(s.name)
					for n := range l {
						scope[n] = true
					}
				}
			}
		}
		if len(scope) == 0 {
			continue
		}
		for _, l := range g.labels {
			if !scope[l] {
				probs = append(probs, fmt.Sprintf("%s (%s): no series it applies to has label %q (they have %v)", g.kw, strings.Join(g.labels, ", "), l, scope.sorted()))
			}
		}
	}
	return probs
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// checkVariable checks a query variable: label_values(selector, label) or
// a PromQL expression.
func (c *catalog) checkVariable(q string) []string {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return c.check(q, "variable")
	}
	probs := c.check(m[1], "variable")
	p, err := parsePromQL(m[1])
	if err != nil || len(p.sels) != 1 {
		return append(probs, "label_values needs exactly one selector")
	}
	if l, ok := c.labelsOf(p.sels[0].name); ok && !l[m[2]] {
		probs = append(probs, fmt.Sprintf("%s has no label %q (it has %v)", p.sels[0].name, m[2], l.sorted()))
	}
	return probs
}

// unknownValues returns the values a matcher names that New does not
// export, when New exports a fixed set for that label.
func (c *catalog) unknownValues(series string, m matcher) []string {
	known := c.values[c.family[series]][m.label]
	if known == nil || strings.Contains(m.value, "$") {
		return nil
	}
	var vals []string
	switch m.op {
	case "=", "!=":
		vals = []string{m.value}
	default:
		if !regexp.MustCompile(`^[A-Za-z0-9_|]+$`).MatchString(m.value) {
			return nil // a real regex: not checked
		}
		vals = strings.Split(m.value, "|")
	}
	var bad []string
	for _, v := range vals {
		if !known[v] {
			bad = append(bad, v)
		}
	}
	return bad
}

func (c *catalog) pgcryptNames() string {
	fams := set{}
	for _, f := range c.family {
		fams[f] = true
	}
	return strings.Join(fams.sorted(), " ")
}

// TestCheckFindsProblems shows that the check above fails on the mistakes it
// is meant to catch, so that its passing means something.
func TestCheckFindsProblems(t *testing.T) {
	c := exportedCatalog(t)
	c.recorded["pgcrypt:query_duration_seconds:p99_rate5m"] = c.recordedLabels(
		`histogram_quantile(0.99, sum by (job, namespace, app, le) (rate(pgcrypt_query_duration_seconds_bucket{job="pgcrypt-proxy"}[5m])))`)
	f := `job="pgcrypt-proxy", namespace=~"$namespace", app=~"$app", pod=~"$pod"`
	for _, tc := range []struct{ mode, expr, want string }{
		// Correct expressions.
		{"", `rate(pgcrypt_errors_total{job="pgcrypt-proxy", kind=~"upstream_connect|upstream_tls"}[5m]) > 0`, ""},
		{"", `rate(pgcrypt_errors_total{job="pgcrypt-proxy", kind="auth_failed"}[5m]) / ignoring(kind) rate(pgcrypt_client_connections_total{job="pgcrypt-proxy"}[5m])`, ""},
		{"", `pgcrypt:query_duration_seconds:p99_rate5m > 0.5 and on (job, namespace, app) sum by (job, namespace, app) (rate(pgcrypt_query_duration_seconds_count{job="pgcrypt-proxy"}[5m])) > 1`, ""},
		{"panel", `sum(rate(pgcrypt_fields_encrypted_total{` + f + `}[$__rate_interval])) by (table, column)`, ""},
		{"panel", `pgcrypt:query_duration_seconds:p99_rate5m{job="pgcrypt-proxy", namespace=~"$namespace", app=~"$app"}`, ""},
		{"panel", `sum(pgcrypt_analysis_cache_total{` + f + `, result="hit"})`, ""},
		// Mistakes.
		{"", `rate(pgcrypt_fields_decrypt_total{job="pgcrypt-proxy"}[5m])`, "metric pgcrypt_fields_decrypt_total is not exported"},
		{"", `rate(pgcrypt_query_duration_seconds_buckets{job="pgcrypt-proxy"}[5m])`, "pgcrypt_query_duration_seconds_buckets is not exported"},
		{"", `rate(pgcrypt_errors_total{job="pgcrypt-proxy", reason="x"}[5m])`, `pgcrypt_errors_total has no label "reason"`},
		{"", `rate(pgcrypt_errors_total{job="pgcrypt-proxy", kind="decrypt_failure"}[5m])`, "[decrypt_failure] is not a kind value"},
		{"", `rate(pgcrypt_errors_total{job="pgcrypt-proxy", kind=~"upstream_connect|upstream_tsl"}[5m])`, "[upstream_tsl] is not a kind value"},
		{"", `sum by (reason) (rate(pgcrypt_errors_total{job="pgcrypt-proxy"}[5m]))`, `by (reason): no series it applies to has label "reason"`},
		{"", `sum(rate(pgcrypt_bytes_total{job="pgcrypt-proxy"}[5m])) without (kind)`, `without (kind): no series it applies to has label "kind"`},
		{"", `histogram_quantile(0.99, sum by (le) (rate(pgcrypt_query_duration_seconds_count{job="pgcrypt-proxy"}[5m])))`, `no series it applies to has label "le"`},
		{"", `rate(pgcrypt_client_connections_total[5m])`, `does not select job="pgcrypt-proxy"`},
		{"", `rate(pgcrpyt_client_connections_total{job="pgcrypt-proxy"}[5m])`, "series pgcrpyt_client_connections_total is neither"},
		{"", `pgcrypt:query_duration_seconds:p95_rate5m > 1`, "recorded series pgcrypt:query_duration_seconds:p95_rate5m is not defined"},
		{"panel", `pgcrypt:query_duration_seconds:p99_rate5m{` + f + `}`, `pgcrypt:query_duration_seconds:p99_rate5m has no label "pod"`},
		{"panel", `sum(rate(pgcrypt_bytes_total{job="pgcrypt-proxy", namespace=~"$namespace", pod=~"$pod"}[5m]))`, `pgcrypt_bytes_total does not filter on app=~"$app"`},
		{"panel", `sum(rate({job="pgcrypt-proxy"}[5m]))`, "a selector without a metric name"},
	} {
		probs := c.check(tc.expr, tc.mode)
		got := strings.Join(probs, "\n")
		switch {
		case tc.want == "" && len(probs) > 0:
			t.Errorf("%s: unexpected problems:\n%s", tc.expr, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%s: want a problem containing %q, got:\n%s", tc.expr, tc.want, got)
		}
	}
	if p := c.checkVariable(`label_values(pgcrypt_client_connections_active{job="pgcrypt-proxy"}, table)`); len(p) == 0 {
		t.Errorf("label_values on a label the metric lacks: no problem found")
	}
}
