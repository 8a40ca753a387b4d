package main

// The scenario file, read exactly as kubesim reads it (src/kubesim/scenario.c): the same keys,
// the same defaults, the same overlay of a workload's entry on the defaults, and unknown keys
// are an error. A scenario is meant to run unchanged against kubesim and against this cluster,
// so the two parsers must agree; the only difference is that the API fault injection (the
// `faults` section) has no meaning here and is accepted, checked and ignored.

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxList mirrors KS_MAX_LIST: kubesim keeps at most this many entries of a list.
const maxList = 32

// Rule is the behaviour of one workload. Pointers are nil when a workload entry leaves a key
// unset, so that the defaults show through (kubesim's "negative = unset").
type Rule struct {
	Name         string
	StartDelay   *float64 // Pending (ContainerCreating) -> Running, simulated seconds
	ReadyDelay   *float64 // Running -> Ready
	Jitter       *float64 // each delay gets a uniform [0, jitter) addition
	NeverReady   *bool    // the readiness probe never passes
	Duration     *float64 // jobs: how long a pod runs
	ExitCode     *int     // jobs: exit code of a failing attempt (0 = succeed)
	FailAttempts *int     // jobs: the first N attempts fail
	CrashAfter   *float64 // a pod whose requirement is missing exits after this long
	Requires     []string // Service names that must have a ready endpoint (nil = unset)
	Logs         []string // log lines of the container (nil = unset)
}

// Behaviour is a Rule with every field resolved, as ks_scenario_rule returns it.
type Behaviour struct {
	Rule         string
	StartDelay   float64
	ReadyDelay   float64
	Jitter       float64
	NeverReady   bool
	Duration     float64
	ExitCode     int
	FailAttempts int
	CrashAfter   float64
	Requires     []string
	Logs         []string
}

// Scenario is a parsed scenario file.
type Scenario struct {
	Defaults     Behaviour
	Rules        []Rule // in file order: among patterns, the first match wins
	BrokenImages []string
	// CrashingImages: a container of one of these images exits soon after every start.
	CrashingImages []string
	Namespaces     []string
	Seed           *float64
	TimeScale      *float64
	// HasFaults is set when the file has a `faults` section (kubesim's HTTP layer only).
	HasFaults bool
}

func defaultScenario() *Scenario {
	return &Scenario{Defaults: Behaviour{
		StartDelay: 1, ReadyDelay: 2, Duration: 5, CrashAfter: 2,
		Requires: []string{}, Logs: []string{},
	}}
}

// LoadScenario reads a scenario file; an empty path gives the built-in defaults.
func LoadScenario(file string) (*Scenario, error) {
	sc := defaultScenario()
	if file == "" {
		return sc, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("scenario: cannot open %s", file)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("scenario %s: %v", file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return sc, nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return sc, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("scenario %s: the document must be a mapping", file)
	}
	if err := sc.parse(root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return sc, nil
}

func (sc *Scenario) parse(root *yaml.Node) error {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		var err error
		switch k {
		case "defaults":
			var r Rule
			if err = parseRule(v, &r, "defaults"); err == nil {
				sc.Defaults = sc.Defaults.overlay(&r)
			}
		case "workloads", "services", "jobs":
			err = sc.parseWorkloads(v, k)
		case "broken_images":
			sc.BrokenImages, err = strList(v, k)
		case "crashing_images":
			sc.CrashingImages, err = strList(v, k)
		case "namespaces":
			sc.Namespaces, err = strList(v, k)
		case "faults":
			sc.HasFaults = true
			err = checkFaults(v)
		case "seed":
			var d float64
			if d, err = number(v, k); err == nil {
				sc.Seed = &d
			}
		case "time_scale":
			var d float64
			if d, err = number(v, k); err == nil {
				if d <= 0 {
					err = fmt.Errorf("scenario: time_scale must be positive")
				}
				sc.TimeScale = &d
			}
		default:
			err = fmt.Errorf("scenario: unknown key %s", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (sc *Scenario) parseWorkloads(n *yaml.Node, where string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("scenario: %s must be a mapping of names", where)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		r := Rule{Name: n.Content[i].Value}
		if err := parseRule(n.Content[i+1], &r, where+"."+r.Name); err != nil {
			return err
		}
		sc.Rules = append(sc.Rules, r)
	}
	return nil
}

func parseRule(n *yaml.Node, r *Rule, where string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("scenario: %s must be a mapping", where)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		what := where + "." + k
		switch k {
		case "start_delay", "ready_delay", "jitter", "duration", "job_duration", "crash_after", "delay":
			d, err := number(v, what)
			if err != nil {
				return err
			}
			if d < 0 {
				return fmt.Errorf("scenario: %s must not be negative", what)
			}
			switch k {
			case "start_delay":
				r.StartDelay = &d
			case "ready_delay":
				r.ReadyDelay = &d
			case "jitter":
				r.Jitter = &d
			case "crash_after":
				r.CrashAfter = &d
			case "delay": // shorthand: the total time to ready
				s, rd := d/3, d-d/3
				r.StartDelay, r.ReadyDelay = &s, &rd
			default:
				r.Duration = &d
			}
		case "exit_code", "fail_attempts":
			d, err := number(v, what)
			if err != nil {
				return err
			}
			c := int(d)
			if k == "exit_code" {
				r.ExitCode = &c
			} else {
				r.FailAttempts = &c
			}
		case "never_ready":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return fmt.Errorf("scenario: %s must be true or false", what)
			}
			b, _ := strconv.ParseBool(v.Value)
			r.NeverReady = &b
		case "requires", "logs":
			l, err := strList(v, what)
			if err != nil {
				return err
			}
			if k == "requires" {
				r.Requires = l
			} else {
				r.Logs = l
			}
		default:
			return fmt.Errorf("scenario: unknown key %s", what)
		}
	}
	return nil
}

// checkFaults validates the `faults` section as kubesim does, so that a scenario that kubesim
// rejects is rejected here too; the values themselves are not used.
func checkFaults(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("scenario: faults must be a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		what := "faults." + k
		switch k {
		case "error_codes":
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("scenario: faults.error_codes must be a list of HTTP codes")
			}
			for _, e := range v.Content {
				c, err := number(e, what)
				if err != nil || c < 400 || c > 599 {
					return fmt.Errorf("scenario: faults.error_codes must be HTTP codes 400-599")
				}
			}
		case "verbs":
			if _, err := strList(v, what); err != nil {
				return err
			}
		case "error_rate", "retry_after", "drop_rate", "latency", "latency_jitter",
			"watch_close_every", "expire_every", "history":
			d, err := number(v, what)
			if err != nil {
				return err
			}
			if d < 0 {
				return fmt.Errorf("scenario: %s must not be negative", what)
			}
			if (k == "error_rate" || k == "drop_rate") && d > 1 {
				return fmt.Errorf("scenario: %s is a fraction between 0 and 1", what)
			}
		default:
			return fmt.Errorf("scenario: unknown key %s", what)
		}
	}
	return nil
}

func number(n *yaml.Node, what string) (float64, error) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		var d float64
		if err := n.Decode(&d); err == nil && !math.IsNaN(d) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("scenario: %s must be a number", what)
}

// strList accepts a list of strings (numbers are printed as kubesim's %g does) or one string.
func strList(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("scenario: %s must be a list of strings", what)
	}
	out := []string{}
	for _, e := range n.Content {
		if len(out) >= maxList {
			break
		}
		switch {
		case e.Kind == yaml.ScalarNode && e.Tag == "!!str":
			out = append(out, e.Value)
		case e.Kind == yaml.ScalarNode && (e.Tag == "!!int" || e.Tag == "!!float"):
			d, _ := number(e, what)
			out = append(out, strconv.FormatFloat(d, 'g', 6, 64))
		default:
			return nil, fmt.Errorf("scenario: %s must be a list of strings", what)
		}
	}
	return out, nil
}

// overlay returns b with the keys that r sets replaced.
func (b Behaviour) overlay(r *Rule) Behaviour {
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&b.StartDelay, r.StartDelay)
	set(&b.ReadyDelay, r.ReadyDelay)
	set(&b.Jitter, r.Jitter)
	set(&b.Duration, r.Duration)
	set(&b.CrashAfter, r.CrashAfter)
	if r.NeverReady != nil {
		b.NeverReady = *r.NeverReady
	}
	if r.ExitCode != nil {
		b.ExitCode = *r.ExitCode
	}
	if r.FailAttempts != nil {
		b.FailAttempts = *r.FailAttempts
	}
	if r.Requires != nil {
		b.Requires = r.Requires
	}
	if r.Logs != nil {
		b.Logs = r.Logs
	}
	return b
}

// Behaviour gives the effective rule for a workload name: an exact name wins, else the first
// shell pattern that matches ("migrate-*" for a Job with a per-run name), else the defaults.
func (sc *Scenario) Behaviour(name string) Behaviour {
	b := sc.Defaults
	b.Rule = name
	var match *Rule
	for i := range sc.Rules {
		if sc.Rules[i].Name == name {
			match = &sc.Rules[i]
			break
		}
	}
	for i := 0; match == nil && i < len(sc.Rules); i++ {
		if fnmatch(sc.Rules[i].Name, name) {
			match = &sc.Rules[i]
		}
	}
	if match == nil {
		return b
	}
	b = b.overlay(match)
	b.Rule = name
	return b
}

// ImageCrashes tells whether a container of image exits at start (crashing_images patterns).
func (sc *Scenario) ImageCrashes(image string) bool {
	for _, p := range sc.CrashingImages {
		if fnmatch(p, image) {
			return true
		}
	}
	return false
}

// ImageBroken tells whether pulling image fails (broken_images patterns).
func (sc *Scenario) ImageBroken(image string) bool {
	for _, p := range sc.BrokenImages {
		if fnmatch(p, image) {
			return true
		}
	}
	return false
}

// fnmatch is fnmatch(3) without flags, as kubesim calls it: unlike path.Match, '*' and '?'
// also match '/', so "*" matches "registry.example/app:1". Supports '*', '?', '[...]'
// (with '!' or '^' negation and ranges) and backslash escapes.
func fnmatch(pattern, name string) bool {
	for len(pattern) > 0 {
		switch c := pattern[0]; c {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if fnmatch(pattern, name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
			pattern, name = pattern[1:], name[1:]
		case '[':
			if name == "" {
				return false
			}
			ok, rest, valid := matchClass(pattern[1:], name[0])
			if !valid { // an unclosed '[' is an ordinary character
				if name[0] != '[' {
					return false
				}
				pattern, name = pattern[1:], name[1:]
				continue
			}
			if !ok {
				return false
			}
			pattern, name = rest, name[1:]
		default:
			if c == '\\' && len(pattern) > 1 {
				pattern = pattern[1:]
				c = pattern[0]
			}
			if name == "" || name[0] != c {
				return false
			}
			pattern, name = pattern[1:], name[1:]
		}
	}
	return name == ""
}

// matchClass matches ch against the bracket expression that starts after '['; it returns
// whether it matched, the pattern after the closing ']', and whether the class was closed.
func matchClass(p string, ch byte) (matched bool, rest string, valid bool) {
	negate := false
	if len(p) > 0 && (p[0] == '!' || p[0] == '^') {
		negate, p = true, p[1:]
	}
	for i := 0; i < len(p); i++ {
		if p[i] == ']' && i > 0 {
			return matched != negate, p[i+1:], true
		}
		lo := p[i]
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			if lo <= ch && ch <= p[i+2] {
				matched = true
			}
			i += 2
			continue
		}
		if lo == ch {
			matched = true
		}
	}
	return false, "", false
}
