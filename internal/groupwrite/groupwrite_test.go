package groupwrite_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"signup/internal/groupwrite"
)

// gated records each write, and holds the first one until open is closed.
type gated struct {
	entered chan struct{} // closed when the first write begins
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	written [][]byte
}

func newGated() *gated { return &gated{entered: make(chan struct{}), open: make(chan struct{})} }

func (w *gated) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.entered)
		<-w.open
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written = append(w.written, bytes.Clone(p))
	return len(p), nil
}

// calls is each write so far.
func (w *gated) calls() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.written)
}

func TestWritesArriveWholeAndInOrder(t *testing.T) {
	var out bytes.Buffer
	g := groupwrite.New(&out)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range lines {
				if _, err := fmt.Fprintf(g, "writer %d line %d\n", i, j); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var i, j int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &i, &j); err != nil || i < 0 || i >= writers {
			t.Fatalf("line %q is not a whole line written", l)
		}
		if j != next[i] {
			t.Fatalf("writer %d: line %d came where line %d was due", i, j, next[i])
		}
		next[i]++
	}
	for i, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", i, n, lines)
		}
	}
}

func TestGathersWhatIsWrittenWhileAWriteRuns(t *testing.T) {
	w := newGated()
	g := groupwrite.New(w)
	if _, err := g.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	<-w.entered // the underlying writer is busy with the first line
	for i := range 100 {
		if _, err := fmt.Fprintf(g, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	close(w.open)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if len(w.calls()) != 2 {
		t.Fatalf("%d writes for 101 lines, 100 of them written while the first was held; want 2", len(w.calls()))
	}
	if n := bytes.Count(w.calls()[1], []byte("\n")); n != 100 {
		t.Errorf("the second write carried %d lines, want 100", n)
	}
}

func TestWriteBlocksWhileTheLimitWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newGated()
		g := groupwrite.NewLimit(w, 10)
		g.Write([]byte("held\n"))
		<-w.entered
		// Ten bytes wait; the limit is reached but not passed.
		if _, err := g.Write([]byte("123456789\n")); err != nil {
			t.Fatal(err)
		}
		returned := make(chan struct{})
		go func() {
			g.Write([]byte("x\n"))
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("a Write past the limit returned while the underlying writer was held")
		default:
		}
		close(w.open)
		<-returned
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, c := range w.calls() {
			all = append(all, c...)
		}
		if string(all) != "held\n123456789\nx\n" {
			t.Errorf("wrote %q", all)
		}
	})
}

func TestAWriteLargerThanTheLimitGoesThrough(t *testing.T) {
	var out bytes.Buffer
	g := groupwrite.NewLimit(&out, 4)
	big := strings.Repeat("y", 100)
	if _, err := g.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != big {
		t.Errorf("wrote %d bytes, want %d", out.Len(), len(big))
	}
}

type failing struct{ err error }

func (f failing) Write([]byte) (int, error) { return 0, f.err }

func TestTheUnderlyingErrorIsReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		broken := errors.New("broken pipe")
		g := groupwrite.New(failing{broken})
		if _, err := g.Write([]byte("a\n")); err != nil {
			t.Fatalf("first Write: %v; the write happens later", err)
		}
		time.Sleep(groupwrite.Linger)
		synctest.Wait() // the writing goroutine tried and failed
		if _, err := g.Write([]byte("b\n")); !errors.Is(err, broken) {
			t.Errorf("Write after the failure = %v, want %v", err, broken)
		}
		if err := g.Close(); !errors.Is(err, broken) {
			t.Errorf("Close = %v, want %v", err, broken)
		}
	})
}

func TestCloseWritesWhatIsLeftAndRefusesMore(t *testing.T) {
	var out bytes.Buffer
	g := groupwrite.New(&out)
	for i := range 50 {
		fmt.Fprintf(g, "%d\n", i)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 50 {
		t.Errorf("%d lines written by Close, want 50", n)
	}
	if _, err := g.Write([]byte("late\n")); !errors.Is(err, groupwrite.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestLinesGatherForTheLingerThenGoOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newGated()
		close(w.open)
		g := groupwrite.New(w)
		for _, l := range []string{"a\n", "b\n", "c\n"} {
			if _, err := g.Write([]byte(l)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if len(w.calls()) != 0 {
			t.Fatalf("%d writes before the linger passed, want none yet", len(w.calls()))
		}
		time.Sleep(groupwrite.Linger)
		synctest.Wait()
		if len(w.calls()) != 1 || string(w.calls()[0]) != "a\nb\nc\n" {
			t.Fatalf("after the linger: writes %q, want one of the three lines", w.calls())
		}
		// A line alone, later, goes out one linger after it came.
		g.Write([]byte("d\n"))
		time.Sleep(groupwrite.Linger)
		synctest.Wait()
		if len(w.calls()) != 2 || string(w.calls()[1]) != "d\n" {
			t.Fatalf("a lone line: writes %q", w.calls())
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCloseDoesNotWaitForTheLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		g := groupwrite.New(&out)
		g.Write([]byte("last words\n"))
		start := time.Now()
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close took %v of the linger", d)
		}
		if out.String() != "last words\n" {
			t.Errorf("wrote %q", out.String())
		}
	})
}
