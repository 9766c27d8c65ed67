package report

import (
	"math"
	"strings"
	"testing"
)

func TestMin(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"one", []float64{3}, 3, true},
		{"noisy runs", []float64{12.5, 9.75, 30, 9.8}, 9.75, true},
		{"skips NaN and Inf", []float64{math.NaN(), 7, math.Inf(1)}, 7, true},
		{"only NaN", []float64{math.NaN()}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Min(tt.in)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("Min(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRatioAndBars(t *testing.T) {
	r := Row{Name: "read", Unit: "ms"}
	for _, v := range []float64{120, 100, 110} {
		r.Add("nook", v)
	}
	for _, v := range []float64{90, 80} {
		r.Add("native", v)
	}
	r.Add("fo", 250)
	r.Add("zero", 0)

	tests := []struct {
		name    string
		bar     Bar
		met, ok bool
	}{
		{"ratio of minimums 1.25 within 1.3", Bar{Versus: "native", Max: 1.3}, true, true},
		{"1.25 misses 1.2", Bar{Versus: "native", Max: 1.2}, false, true},
		{"equal meets a non-strict bar", Bar{Versus: "native", Max: 1.25}, true, true},
		{"faster than peer", Bar{Versus: "fo", Max: 1}, true, true},
		{"absolute value", Bar{Max: 100}, true, true},
		{"strict absolute value", Bar{Max: 100, Strict: true}, false, true},
		{"missing peer", Bar{Versus: "absent", Max: 1}, false, false},
		{"zero peer", Bar{Versus: "zero", Max: 1}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			met, ok := r.Met("nook", tt.bar)
			if met != tt.met || ok != tt.ok {
				t.Errorf("Met = %v, %v; want %v, %v", met, ok, tt.met, tt.ok)
			}
		})
	}
	if v, ok := r.Ratio("nook", "native"); !ok || v != 1.25 {
		t.Errorf("Ratio = %v, %v; want 1.25 (min over min)", v, ok)
	}
}

func TestMarkdown(t *testing.T) {
	rows := []Row{
		{Name: "warm read", Unit: "ms", Bars: []Bar{{Versus: "native", Max: 1.2}, {Versus: "fo", Max: 1}},
			Samples: map[string][]float64{"native": {20, 18}, "fo": {35, 40}, "nook": {21.6, 30}}},
		{Name: "cold read", Unit: "ms", Bars: []Bar{{Versus: "fo", Max: 1}},
			Missing: map[string]string{"native": "needs root", "fo": "needs root", "nook": "needs root"}},
		{Name: "RSS per file", Unit: "B/file", Bars: []Bar{{Max: 1024, Strict: true}},
			Samples: map[string][]float64{"fo": {600}, "nook": {2048}}, Missing: map[string]string{"native": "no server"}},
	}
	tab := Table{Title: "fs", Configs: []string{"native", "fo", "nook"}, Subject: "nook",
		Ratios: [][2]string{{"nook", "native"}, {"nook", "fo"}}, Rows: rows}
	var b strings.Builder
	if err := tab.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	want := `### fs

| workload | native | fo | nook | nook/native | nook/fo | bars for nook |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
| warm read (ms) | 18.0 | 35.0 | 21.6 | 1.20 | 0.62 | ≤1.2× native ✓, ≤ fo ✓ |
| cold read (ms) | n/a[^1] | n/a[^1] | n/a[^1] | – | – | ≤ fo ? |
| RSS per file (B/file) | n/a[^2] | 600 | 2048 | – | 3.41 | <1024 B/file ✗ |

[^1]: needs root
[^2]: no server
`
	if got := b.String(); got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{0.04, "0.0"}, {9.96, "10.0"}, {99.94, "99.9"}, {100.4, "100"}, {12345.6, "12346"}} {
		if got := FormatValue(tt.v); got != tt.want {
			t.Errorf("FormatValue(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	if got := BarText(Bar{Versus: "native", Max: 1.5}, "ms"); got != "≤1.5× native" {
		t.Errorf("BarText = %q", got)
	}
}
