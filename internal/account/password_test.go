package account

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// argonTestParams are the cheapest valid parameters, for tests that are
// about the Hasher's logic rather than argon2's cost.
func argonTestParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", got, want)
	}
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

func TestParamsValidate(t *testing.T) {
	ok := argonTestParams()
	with := func(f func(*Params)) Params { p := ok; f(&p); return p }
	tests := []struct {
		name    string
		p       Params
		wantErr bool
	}{
		{"small", ok, false},
		{"default", DefaultParams(), false},
		{"max", Params{Memory: 1 << 20, Time: 100, Threads: 255, SaltLen: 64, KeyLen: 128}, false},
		{"zero", Params{}, true},
		{"no threads", with(func(p *Params) { p.Threads = 0 }), true},
		{"memory below 8 KiB per thread", with(func(p *Params) { p.Threads = 9 }), true},
		{"memory above 1 GiB", with(func(p *Params) { p.Memory = 1<<20 + 1 }), true},
		{"no time", with(func(p *Params) { p.Time = 0 }), true},
		{"time above 100", with(func(p *Params) { p.Time = 101 }), true},
		{"salt too short", with(func(p *Params) { p.SaltLen = 7 }), true},
		{"salt too long", with(func(p *Params) { p.SaltLen = 65 }), true},
		{"key too short", with(func(p *Params) { p.KeyLen = 15 }), true},
		{"key too long", with(func(p *Params) { p.KeyLen = 129 }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%+v) = %v, want error: %v", tt.p, err, tt.wantErr)
			}
		})
	}
}

func TestNewHasherPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewHasher(Params{}) did not panic")
		}
	}()
	NewHasher(Params{}, 1)
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := t.Context()
	h := NewHasher(DefaultParams(), 0)

	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !phcPattern.MatchString(encoded) {
		t.Fatalf("Hash = %q, not in PHC format %s", encoded, phcPattern)
	}
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		t.Fatalf("parsePHC(%q): %v", encoded, err)
	}
	if p != DefaultParams() || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("parsed params %+v, salt %d bytes, key %d bytes; want %+v, 16, 32", p, len(salt), len(key), DefaultParams())
	}

	ok, rehash, err := h.Verify(ctx, "correct horse battery staple", encoded)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, rehash, err = h.Verify(ctx, "correct horse battery stapler", encoded)
	if err != nil || ok || rehash {
		t.Fatalf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}

	again, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Fatal("two hashes of one password are equal; the salt is not random")
	}
}

// TestVerifyForeignEncoding checks Verify against a hash encoded here by
// hand, as another argon2id implementation would, not by encodePHC.
func TestVerifyForeignEncoding(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("hunter22hunter22"), salt, 3, 128, 2, 24)
	encoded := fmt.Sprintf("$argon2id$v=19$m=128,t=3,p=2$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))

	h := NewHasher(argonTestParams(), 1)
	ok, rehash, err := h.Verify(t.Context(), "hunter22hunter22", encoded)
	if err != nil || !ok {
		t.Fatalf("Verify(%q) = %v, %v, %v; want true", encoded, ok, rehash, err)
	}
	// A 24-byte key is shorter than the 32 the hasher makes.
	if !rehash {
		t.Fatal("rehash = false for a hash with a shorter key")
	}
}

func TestVerifyRehash(t *testing.T) {
	current := Params{Memory: 256, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
	with := func(f func(*Params)) Params { p := current; f(&p); return p }
	tests := []struct {
		name   string
		stored Params
		rehash bool
	}{
		{"same", current, false},
		{"less memory", with(func(p *Params) { p.Memory = 128 }), true},
		{"fewer passes", with(func(p *Params) { p.Time = 1 }), true},
		{"shorter salt", with(func(p *Params) { p.SaltLen = 8 }), true},
		{"shorter key", with(func(p *Params) { p.KeyLen = 16 }), true},
		{"fewer threads only", with(func(p *Params) { p.Threads = 1 }), false},
		{"stronger", with(func(p *Params) { p.Memory, p.Time = 512, 3 }), false},
	}
	ctx := t.Context()
	h := NewHasher(current, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded, err := NewHasher(tt.stored, 1).Hash(ctx, "old password")
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := h.Verify(ctx, "old password", encoded)
			if err != nil || !ok || rehash != tt.rehash {
				t.Fatalf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.rehash)
			}
			// A wrong password never asks for a rehash.
			ok, rehash, err = h.Verify(ctx, "wrong password", encoded)
			if err != nil || ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

// goodPHC is a well-formed hash with argonTestParams, to mutate in tests.
const goodPHC = "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"

// malformedPHC are hash strings Verify must refuse without running argon2.
var malformedPHC = []string{
	"",
	"$",
	"$$$$$",
	"password",
	"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", // bcrypt
	strings.Replace(goodPHC, "argon2id", "argon2i", 1),
	strings.Replace(goodPHC, "argon2id", "ARGON2ID", 1),
	strings.Replace(goodPHC, "v=19", "v=16", 1),
	strings.Replace(goodPHC, "$v=19", "", 1),
	strings.Replace(goodPHC, "v=19", "v=019", 1),
	strings.Replace(goodPHC, "m=64", "m=0", 1),
	strings.Replace(goodPHC, "m=64", "m=7", 1),
	strings.Replace(goodPHC, "m=64", "m=064", 1),
	strings.Replace(goodPHC, "m=64", "m=+64", 1),
	strings.Replace(goodPHC, "m=64", "m=-64", 1),
	strings.Replace(goodPHC, "m=64", "m= 64", 1),
	strings.Replace(goodPHC, "m=64", "m=", 1),
	strings.Replace(goodPHC, "m=64", "m=0x40", 1),
	strings.Replace(goodPHC, "m=64", "m=1048577", 1),              // 1 GiB + 1 KiB
	strings.Replace(goodPHC, "m=64", "m=4294967295", 1),           // max uint32
	strings.Replace(goodPHC, "m=64", "m=4294967296", 1),           // overflows uint32
	strings.Replace(goodPHC, "m=64", "m=99999999999999999999", 1), // overflows uint64
	strings.Replace(goodPHC, "t=1", "t=0", 1),
	strings.Replace(goodPHC, "t=1", "t=101", 1),
	strings.Replace(goodPHC, "p=1", "p=0", 1),
	strings.Replace(goodPHC, "p=1", "p=256", 1),
	strings.Replace(goodPHC, "p=1", "p=9", 1), // m=64 < 8*9
	strings.Replace(goodPHC, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
	strings.Replace(goodPHC, "m=64,t=1,p=1", "m=64,t=1", 1),
	strings.Replace(goodPHC, "m=64,t=1,p=1", "m=64,t=1,p=1,keyid=abc", 1),
	strings.Replace(goodPHC, "m=64,t=1,p=1", "m=64,,t=1,p=1", 1),
	strings.Replace(goodPHC, "m=64,t=1,p=1", "", 1),
	goodPHC + "$",
	goodPHC + "=",
	goodPHC + "\n",
	goodPHC + "AAAA" + strings.Repeat("A", 200), // key longer than 128 bytes
	"$" + goodPHC,
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "MDEyMzQ1Njc4OWFiY2RlZg==$", 1), // padded
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "MDEyMzQ1Njc4OWFiY2RlZh$", 1),   // stray bits
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "MDEyMzQ1Njc4\nOWFiY2RlZg$", 1),
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "MDEyMzQ1Njc4OWFiY2RlZg-_$", 1),           // url alphabet
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "MDEyMzQ$", 1),                            // 5-byte salt
	strings.Replace(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZg$", "$", 1),                                   // no salt
	strings.TrimSuffix(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY") + "MDEyMzQ1Njc4OQ", // 10-byte key
	strings.TrimSuffix(goodPHC, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"),                    // no key
	strings.Repeat("$argon2id", 10_000),
	"$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 1<<20) + "$AAAA",
	"$argon2id$v=19$m=64,t=1,p=1$\xff\xfe$\x00",
}

func TestVerifyMalformed(t *testing.T) {
	if _, _, _, err := parsePHC(goodPHC); err != nil {
		t.Fatalf("goodPHC does not parse: %v", err)
	}
	h := NewHasher(argonTestParams(), 1)
	for _, s := range malformedPHC {
		name := s
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), "password", s)
			if err == nil || ok || rehash {
				t.Fatalf("Verify(%.100q) = %v, %v, %v; want an error", s, ok, rehash, err)
			}
			if !strings.Contains(err.Error(), "malformed argon2id hash") {
				t.Errorf("error %q does not say the hash is malformed", err)
			}
		})
	}
	if n := h.MaxInFlight(); n != 0 {
		t.Fatalf("MaxInFlight = %d after malformed hashes only; argon2 ran", n)
	}
}

func TestHasherHonoursContextWhileWaiting(t *testing.T) {
	h := NewHasher(argonTestParams(), 1)
	free, err := h.turns.take(t.Context()) // every slot busy
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with no free slot = %v, want context.DeadlineExceeded", err)
	}
	if _, _, err := h.Verify(ctx, "password1", goodPHC); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with no free slot = %v, want context.DeadlineExceeded", err)
	}
	if err := h.VerifyDummy(ctx, "password1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("VerifyDummy with no free slot = %v, want context.DeadlineExceeded", err)
	}

	// Cancelled while blocked: the waiter returns once cancel is called.
	ctx, cancel = context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "password1")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash cancelled while waiting = %v, want context.Canceled", err)
	}
	if n, w := h.InFlight(), h.turns.waiting.Len(); n != 1 || w != 0 {
		t.Fatalf("%d running, %d waiting after the waiters gave up; want only the held turn", n, w)
	}

	free() // free the slot: work proceeds
	if _, err := h.Hash(t.Context(), "password1"); err != nil {
		t.Fatalf("Hash with a free slot: %v", err)
	}
}

func TestHashWithDoneContextDoesNoWork(t *testing.T) {
	h := NewHasher(argonTestParams(), 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash(cancelled ctx) = %v, want context.Canceled", err)
	}
	if n := h.MaxInFlight(); n != 0 {
		t.Fatalf("MaxInFlight = %d; argon2 ran for a cancelled context", n)
	}
}

func TestHasherLimitsConcurrency(t *testing.T) {
	const calls, limit = 200, 2
	h := NewHasher(argonTestParams(), limit)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			if _, err := h.Hash(t.Context(), "password1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := h.MaxInFlight(); got != limit {
		t.Fatalf("MaxInFlight = %d after %d concurrent hashes, want %d", got, calls, limit)
	}
	if got := h.InFlight(); got != 0 {
		t.Fatalf("InFlight = %d when all hashes returned, want 0", got)
	}
}

func TestNewHasherDefaultConcurrency(t *testing.T) {
	for _, c := range []int{0, -1} {
		if got := NewHasher(argonTestParams(), c).turns.slots; got != runtime.NumCPU() {
			t.Errorf("NewHasher(p, %d) allows %d at once, want runtime.NumCPU() = %d", c, got, runtime.NumCPU())
		}
	}
}

func TestVerifyDummy(t *testing.T) {
	p := Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 24, KeyLen: 40}
	h := NewHasher(p, 1)

	// Same parameters as a real hash, so the same argon2 work and time.
	got, _, _, err := parsePHC(h.dummy)
	if err != nil {
		t.Fatalf("dummy hash %q does not parse: %v", h.dummy, err)
	}
	if got != p {
		t.Fatalf("dummy hash params = %+v, want the hasher's %+v", got, p)
	}

	if err := h.VerifyDummy(t.Context(), "any password"); err != nil {
		t.Fatal(err)
	}
	if n := h.MaxInFlight(); n != 1 {
		t.Fatalf("MaxInFlight = %d after VerifyDummy, want 1: argon2 did not run", n)
	}
}

func FuzzVerifyParse(f *testing.F) {
	f.Add(goodPHC)
	f.Add(encodePHC(DefaultParams(), make([]byte, 16), make([]byte, 32)))
	for _, s := range malformedPHC {
		if len(s) <= 1024 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsePHC(%q) accepted invalid params %+v: %v", s, p, err)
		}
		if int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("parsePHC(%q): params %+v, salt %d bytes, key %d bytes", s, p, len(salt), len(key))
		}
		if re := encodePHC(p, salt, key); re != s {
			t.Fatalf("parsePHC(%q) re-encodes to %q", s, re)
		}
	})
}

// BenchmarkHash measures one hash with DefaultParams; hashes/s is the
// throughput of a single slot.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := b.Context()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkHashParallel measures throughput with one slot per CPU, the
// default concurrency.
func BenchmarkHashParallel(b *testing.B) {
	h := NewHasher(DefaultParams(), 0)
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}
