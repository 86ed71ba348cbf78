package ops

import "fmt"

// chart is a bar chart of emails sent per minute, laid out in Go so the
// page draws it as plain SVG, without scripts.
type chart struct {
	Width, Height int // of the plot area, in SVG units
	Bars          []bar
	Max           int64 // the count the top of the plot stands for
	Total         int64 // emails over the whole chart
	Minutes       int
}

// bar is one minute.
type bar struct {
	X, Y, W, H int
	Label      string // for the bar's tooltip and screen readers
}

// Chart geometry: a bar per minute, with a gap.
const (
	barWidth    = 10
	chartHeight = 120
)

// newChart lays out one bar per count, oldest first; the last count is the
// current minute.
func newChart(counts []int64) chart {
	c := chart{Width: len(counts) * barWidth, Height: chartHeight, Minutes: len(counts), Max: 1}
	for _, n := range counts {
		c.Total += n
		c.Max = max(c.Max, n)
	}
	for i, n := range counts {
		h := int(n * chartHeight / c.Max)
		if n > 0 && h == 0 {
			h = 1 // a minute with any mail shows
		}
		ago := len(counts) - 1 - i
		label := fmt.Sprintf("%d sent %d min ago", n, ago)
		if ago == 0 {
			label = fmt.Sprintf("%d sent this minute", n)
		}
		c.Bars = append(c.Bars, bar{X: i * barWidth, Y: chartHeight - h, W: barWidth - 2, H: h, Label: label})
	}
	return c
}
