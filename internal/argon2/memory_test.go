package argon2

import (
	"bytes"
	"encoding/hex"
	"sync"
	"testing"
)

func TestMemoryGivesUpstreamsKeys(t *testing.T) {
	// One Memory through every vector in turn, so that kept areas are
	// reused, some too small for the next parameters and some larger: the
	// keys must be upstream's known answers all the same, in every mode.
	m := NewMemory(1)
	password, salt := []byte("password"), []byte("somesalt")
	for range 2 {
		for i, v := range testVectors {
			want, err := hex.DecodeString(v.hash)
			if err != nil {
				t.Fatalf("vector %d: %v", i, err)
			}
			got := deriveKeyIn(m, v.mode, password, salt, nil, nil, v.time, v.memory, v.threads, uint32(len(want)))
			if !bytes.Equal(got, want) {
				t.Errorf("vector %d in kept memory: got %x, want %x", i, got, want)
			}
		}
	}
}

func TestMemoryIDKeyMatchesIDKeyConcurrently(t *testing.T) {
	// More callers than kept areas: those that find none free get new
	// memory; every key is still IDKey's.
	m := NewMemory(2)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 {
				pw := []byte{byte(g), byte(i), 'p', 'w'}
				salt := []byte("sixteen byte sal")
				want := IDKey(pw, salt, 2, 256+uint32(i)*64, 1, 32)
				if got := m.IDKey(pw, salt, 2, 256+uint32(i)*64, 1, 32); !bytes.Equal(got, want) {
					t.Errorf("caller %d key %d: got %x, want %x", g, i, got, want)
				}
			}
		})
	}
	wg.Wait()
	if n := len(m.free); n > 2 {
		t.Errorf("%d areas kept, want at most 2", n)
	}
}

func BenchmarkIDKey19MiB(b *testing.B) {
	password, salt := []byte("password"), []byte("sixteen byte sal")
	b.Run("new memory", func(b *testing.B) {
		for b.Loop() {
			IDKey(password, salt, 2, 19*1024, 1, 32)
		}
	})
	b.Run("kept memory", func(b *testing.B) {
		m := NewMemory(1)
		for b.Loop() {
			m.IDKey(password, salt, 2, 19*1024, 1, 32)
		}
	})
}
