package timingtest

import (
	"math"
	"testing"
	"time"
)

func TestMannWhitneyU(t *testing.T) {
	seq := func(from, to float64) []float64 {
		var s []float64
		for v := from; v <= to; v++ {
			s = append(s, v)
		}
		return s
	}
	tests := []struct {
		name  string
		a, b  []float64
		wantU float64
		wantP float64
	}{
		// R: wilcox.test(1:5, 6:10, exact = FALSE, correct = TRUE) gives
		// W = 0, p-value = 0.01219; scipy's asymptotic method agrees.
		{"separated", seq(1, 5), seq(6, 10), 0, 0.012185780355344818},
		{"separated, swapped", seq(6, 10), seq(1, 5), 25, 0.012185780355344818},
		{"identical", []float64{1, 2, 3}, []float64{1, 2, 3}, 4.5, 1},
		// Ties: the variance is corrected for the groups of equal values.
		{"ties", []float64{1, 1, 2, 2, 3}, []float64{2, 3, 3, 4, 4}, 3, 0.05241162867102868},
		{"overlapping", seq(1, 20), seq(11, 30), 50, 5.212549620603763e-05},
		{"all equal", []float64{7, 7, 7}, []float64{7, 7}, 3, 1},
		{"empty", nil, []float64{1}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := MannWhitneyU(tt.a, tt.b)
			if u != tt.wantU || math.Abs(p-tt.wantP) > 1e-12 {
				t.Errorf("MannWhitneyU = U %v, p %.15g; want U %v, p %.15g", u, p, tt.wantU, tt.wantP)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	for _, tt := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(3), 3 * time.Millisecond},
		{ms(5, 1, 3), 3 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// The comparison the timing tests rely on must catch a real difference of
// 1 ms, measured the way they measure, on a machine as busy as it is.
func TestCompareCatchesOneMillisecond(t *testing.T) {
	s := Measure(5, 100, 5, nil,
		Arm{"base", func() { Spin(2 * time.Millisecond) }},
		Arm{"slower", func() { Spin(3 * time.Millisecond) }},
	)
	c := Compare(s)
	t.Log(c)
	if err := c.Indistinguishable(0.10, 0.01); err == nil {
		t.Fatalf("a 1 ms difference went unnoticed: %s", c)
	}
	if c.MinP >= 0.01 {
		t.Errorf("Mann–Whitney alone missed a 1 ms difference: p = %g", c.MinP)
	}
}

func TestIndistinguishable(t *testing.T) {
	ms := time.Millisecond
	same := Comparison{Spread: 0.05, MinP: 0.3}
	if err := same.Indistinguishable(0.10, 0.01); err != nil {
		t.Errorf("close medians, high p: %v", err)
	}
	for _, c := range []Comparison{
		{Spread: 0.11, MinP: 0.3, Medians: map[string]time.Duration{"a": ms}},
		{Spread: 0.01, MinP: 0.001, Medians: map[string]time.Duration{"a": ms}},
	} {
		if err := c.Indistinguishable(0.10, 0.01); err == nil {
			t.Errorf("%+v passed", c)
		}
	}
}
