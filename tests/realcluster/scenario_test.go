package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every scenario shipped with the examples is read by kubesim; it must be read here too.
func TestExampleScenariosLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/scenario.yaml")
	if len(files) == 0 {
		t.Skip("no example scenarios")
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestRulesOverlayAndPatternOrder(t *testing.T) {
	sc, err := LoadScenario(writeScenario(t, `
time_scale: 0.05
seed: 3
defaults: {start_delay: 1, ready_delay: 3, logs: "one line"}
workloads:
  "seed-*-2": {duration: 4}
  "seed-*": {duration: 2, exit_code: 1}
services:
  web: {delay: 9, requires: db, never_ready: true}
jobs:
  "m?gr[a-z]te": {fail_attempts: 2, logs: [1, two]}
broken_images: "nope:*"
crashing_images: ["example/web:2", "crash:*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if *sc.TimeScale != 0.05 || *sc.Seed != 3 {
		t.Errorf("time_scale/seed: %v %v", *sc.TimeScale, *sc.Seed)
	}
	// Patterns are tried in file order: the more specific one is written first.
	if b := sc.Behaviour("seed-abc-2"); b.Duration != 4 || b.ExitCode != 0 || b.StartDelay != 1 {
		t.Errorf("seed-abc-2: %+v", b)
	}
	if b := sc.Behaviour("seed-abc-1"); b.Duration != 2 || b.ExitCode != 1 {
		t.Errorf("seed-abc-1: %+v", b)
	}
	// delay is the total time to ready: a third to start, the rest to become ready.
	if b := sc.Behaviour("web"); b.StartDelay != 3 || b.ReadyDelay != 6 || !b.NeverReady || len(b.Requires) != 1 || b.Requires[0] != "db" {
		t.Errorf("web: %+v", b)
	}
	if b := sc.Behaviour("migrate"); b.FailAttempts != 2 || strings.Join(b.Logs, "|") != "1|two" {
		t.Errorf("migrate: %+v", b)
	}
	if b := sc.Behaviour("other"); b.Duration != 5 || b.CrashAfter != 2 || strings.Join(b.Logs, "|") != "one line" {
		t.Errorf("defaults: %+v", b)
	}
	if !sc.ImageBroken("nope:1") || sc.ImageBroken("nginx") {
		t.Error("broken_images")
	}
	if !sc.ImageCrashes("example/web:2") || !sc.ImageCrashes("crash:1") || sc.ImageCrashes("example/web:1") {
		t.Error("crashing_images")
	}
}

func TestScenarioErrors(t *testing.T) {
	for text, want := range map[string]string{
		"bogus: 1":                            "unknown key bogus",
		"defaults: {startdelay: 1}":           "unknown key defaults.startdelay",
		"workloads: {web: {ready_delay: -1}}": "must not be negative",
		"workloads: {web: {never_ready: 1}}":  "must be true or false",
		"workloads: [web]":                    "must be a mapping of names",
		"time_scale: 0":                       "time_scale must be positive",
		"faults: {error_rate: 2}":             "fraction between 0 and 1",
		"faults: {error_codes: [200]}":        "HTTP codes 400-599",
		"faults: {drop: 1}":                   "unknown key faults.drop",
		"- a list":                            "must be a mapping",
		"defaults: {logs: {a: b}}":            "must be a list of strings",
		"defaults: {duration: \"5\"}":         "must be a number",
	} {
		_, err := LoadScenario(writeScenario(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", text, err, want)
		}
	}
	// The fault injection is kubesim's: a valid faults section is accepted and flagged.
	sc, err := LoadScenario(writeScenario(t, "faults: {error_rate: 0.1, error_codes: [503], verbs: [get]}"))
	if err != nil || !sc.HasFaults {
		t.Errorf("faults: %v %+v", err, sc)
	}
	if sc, err := LoadScenario(writeScenario(t, "")); err != nil || sc.Defaults.StartDelay != 1 {
		t.Errorf("empty file: %v", err)
	}
}

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "registry.example/app:1", true}, // unlike path.Match, '*' crosses '/'
		{"migrate-*", "migrate-20240101-ab12", true},
		{"migrate-*", "migrate", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", true},
		{"[a-c]x", "bx", true},
		{"[!a-c]x", "bx", false},
		{"[^a-c]x", "dx", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"[ab", "[ab", true}, // an unclosed bracket is literal
		{"web", "web", true},
		{"web", "webx", false},
	} {
		if got := fnmatch(c.pattern, c.name); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
