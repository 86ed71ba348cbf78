// Package timingtest measures whether requests take the same time, for
// tests that check a response's timing reveals nothing (whether an account
// exists, whether it is confirmed).
//
// Measure runs the arms interleaved, each round in a fresh random order, so
// that load from elsewhere on the machine slows every arm alike rather than
// whichever was being measured. Each sample is the fastest of a few runs
// of its arm: on a busy machine most of a request's time can be spent
// waiting for a CPU, and the fastest run is the one that waited least, so
// it shows the work done, which is what could tell the arms apart. An
// attacker measuring from outside filters noise the same way. Compare then asks two things of the
// samples: that the medians are within a tolerance of each other, and that
// a Mann–Whitney U test finds no difference between any two arms.
package timingtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Arm is one kind of request to time.
type Arm struct {
	Name string
	Run  func()
}

// Samples are the durations measured for each arm, by name, in the order
// they were taken.
type Samples map[string][]time.Duration

// Measure takes one sample of every arm per round, for warmup rounds that
// are not kept and then rounds that are. A round is best passes over the
// arms (at least one), each pass in a fresh random order, and an arm's
// sample is its fastest run of the round: every arm's fastest is taken
// from the same stretch of time, so a burst of load elsewhere touches them
// alike. before, if not nil, runs before each round, untimed.
func Measure(warmup, rounds, best int, before func(), arms ...Arm) Samples {
	s := make(Samples, len(arms))
	order := make([]int, len(arms))
	for i := range order {
		order[i] = i
	}
	fastest := make([]time.Duration, len(arms))
	for r := range warmup + rounds {
		if before != nil {
			before()
		}
		for i := range fastest {
			fastest[i] = time.Duration(math.MaxInt64)
		}
		for range max(best, 1) {
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, i := range order {
				start := time.Now()
				arms[i].Run()
				fastest[i] = min(fastest[i], time.Since(start))
			}
		}
		if r >= warmup {
			for i, a := range arms {
				s[a.Name] = append(s[a.Name], fastest[i])
			}
		}
	}
	return s
}

// Median returns the median of ds (the mean of the middle two for an even
// count); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MannWhitneyU returns the U statistic of a against b (the number of pairs
// in which a's value is the larger, ties counting half) and the two-sided
// p-value of the hypothesis that neither sample tends to be larger. The
// p-value comes from the normal approximation with the tie correction and
// a continuity correction, sound for 20 or more values in each sample. It
// is 1 when either sample is empty or every value is the same.
func MannWhitneyU(a, b []float64) (u, p float64) {
	n1, n2 := float64(len(a)), float64(len(b))
	if len(a) == 0 || len(b) == 0 {
		return 0, 1
	}
	type obs struct {
		v     float64
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	// Ranks from 1, ties sharing the mean of their ranks; tieTerm sums
	// t³-t over the groups of t tied values.
	var rankA, tieTerm float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 … j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	u = rankA - n1*(n1+1)/2
	n := n1 + n2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 {
		return u, 1
	}
	z := (math.Abs(u-mean) - 0.5) / math.Sqrt(variance)
	if z < 0 {
		z = 0
	}
	return u, math.Erfc(z / math.Sqrt2)
}

// Comparison is what Compare found: the median of each arm, the largest
// relative gap between two medians, and the smallest p-value of any pair.
type Comparison struct {
	Medians map[string]time.Duration
	// Spread is (largest median - smallest) / smallest.
	Spread float64
	// MinP is the smallest Mann–Whitney p-value over all pairs of arms, and
	// MinPair the pair it came from.
	MinP    float64
	MinPair [2]string
}

// String is a one-line account for a test log.
func (c Comparison) String() string {
	names := make([]string, 0, len(c.Medians))
	for n := range c.Medians {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("medians")
	for _, n := range names {
		fmt.Fprintf(&b, " %s %v", n, c.Medians[n].Round(time.Microsecond))
	}
	fmt.Fprintf(&b, "; spread %.1f%%; smallest Mann–Whitney p = %.3g (%s vs %s)", 100*c.Spread, c.MinP, c.MinPair[0], c.MinPair[1])
	return b.String()
}

// Compare compares every arm of s with every other.
func Compare(s Samples) Comparison {
	c := Comparison{Medians: make(map[string]time.Duration, len(s)), MinP: 1}
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, n := range names {
		m := Median(s[n])
		c.Medians[n] = m
		lo, hi = min(lo, m), max(hi, m)
	}
	if lo > 0 && len(names) > 0 {
		c.Spread = float64(hi-lo) / float64(lo)
	}
	for i, x := range names {
		for _, y := range names[i+1:] {
			if _, p := MannWhitneyU(seconds(s[x]), seconds(s[y])); p < c.MinP {
				c.MinP, c.MinPair = p, [2]string{x, y}
			}
		}
	}
	return c
}

// Indistinguishable reports, as an error, whether the arms of c can be told
// apart: medians further apart than tolerance (0.10 for 10%), or a pair
// whose Mann–Whitney p-value is below alpha (0.01).
func (c Comparison) Indistinguishable(tolerance, alpha float64) error {
	var problems []string
	if c.Spread > tolerance {
		problems = append(problems, fmt.Sprintf("medians differ by %.1f%%, more than %.0f%%", 100*c.Spread, 100*tolerance))
	}
	if c.MinP < alpha {
		problems = append(problems, fmt.Sprintf("%s and %s differ (Mann–Whitney p = %.3g < %g)", c.MinPair[0], c.MinPair[1], c.MinP, alpha))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("timing tells the arms apart: %s (%s)", strings.Join(problems, "; "), c)
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// Spin keeps the CPU busy for d, as work of that length would; unlike a
// sleep, it is slowed by a loaded machine as real work is.
func Spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
