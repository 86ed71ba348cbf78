package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"signup/internal/argon2"
)

// Params are argon2id parameters. The zero value is not usable; start from
// DefaultParams.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (argon2's p).
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32
}

// Bounds on argon2id parameters. They apply both to a Hasher's own Params
// and to the parameters read back from a stored hash, so that a corrupt or
// hostile hash string cannot make Verify allocate gigabytes or spin for
// minutes.
const (
	phcMaxMemory  = 1 << 20 // KiB, 1 GiB
	phcMaxTime    = 100
	phcMinSaltLen = 8 // RFC 9106 §3.1
	phcMaxSaltLen = 64
	phcMinKeyLen  = 16
	phcMaxKeyLen  = 128
	// phcMaxLen bounds the whole encoded string; the longest valid one is
	// well under it, so longer input is rejected before any parsing.
	phcMaxLen = 512
)

// DefaultParams returns the argon2id parameters new hashes are made with:
// OWASP's minimum recommendation, m=19 MiB, t=2, p=1, a 16-byte salt and a
// 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports whether p is within the bounds this package accepts:
// memory from 8*Threads KiB up to 1 GiB, time 1..100, threads 1..255, salt
// 8..64 bytes and key 16..128 bytes.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1:
		return errors.New("argon2id threads must be at least 1")
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("argon2id memory must be at least 8 KiB per thread (%d KiB)", 8*uint32(p.Threads))
	case p.Memory > phcMaxMemory:
		return fmt.Errorf("argon2id memory must be at most %d KiB", phcMaxMemory)
	case p.Time < 1 || p.Time > phcMaxTime:
		return fmt.Errorf("argon2id time must be between 1 and %d", phcMaxTime)
	case p.SaltLen < phcMinSaltLen || p.SaltLen > phcMaxSaltLen:
		return fmt.Errorf("argon2id salt length must be between %d and %d bytes", phcMinSaltLen, phcMaxSaltLen)
	case p.KeyLen < phcMinKeyLen || p.KeyLen > phcMaxKeyLen:
		return fmt.Errorf("argon2id key length must be between %d and %d bytes", phcMinKeyLen, phcMaxKeyLen)
	}
	return nil
}

// weakerThan reports whether hashes made with p should be upgraded to q:
// less memory, fewer passes, a shorter salt or a shorter key. A different
// degree of parallelism alone is not a weakness and does not count.
func (p Params) weakerThan(q Params) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// Hasher hashes and verifies passwords with argon2id. Each hash holds
// Params.Memory KiB while it runs, so a Hasher lets only a fixed number run
// at once; the others wait for their turn in a queue (see admission.go).
// It is safe for concurrent use.
type Hasher struct {
	params Params
	turns  *turnQueue
	// memory is argon2's work memory, kept for the next hash: one area
	// per slot.
	memory *argon2.Memory
	// dummy is a well-formed hash with h's params that matches no password;
	// VerifyDummy verifies against it.
	dummy string
}

// NewHasher returns a Hasher that makes new hashes with p and lets at most
// concurrency hashes run at once (runtime.NumCPU() when concurrency <= 0);
// opts change how the others queue. It panics if p fails Params.Validate:
// parameters are fixed by the program, so invalid ones are a programming
// error.
func NewHasher(p Params, concurrency int, opts ...HasherOption) *Hasher {
	if err := p.Validate(); err != nil {
		panic("account.NewHasher: " + err.Error())
	}
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	// The dummy needs no argon2 run: random bytes in the key position are as
	// good as a real key for a hash nobody can match, and building it here
	// keeps the first VerifyDummy as fast as the later ones.
	dummy := encodePHC(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen))
	return &Hasher{params: p, turns: newTurnQueue(concurrency, seedCost(p), opts...), memory: argon2.NewMemory(concurrency), dummy: dummy}
}

// Hash returns the argon2id hash of password with a fresh random salt, in
// PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64. It waits for a free slot
// and returns ctx's error if ctx ends first, or a *BusyError at once when
// the wait for a turn would be too long.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := randomBytes(h.params.SaltLen)
	var key []byte
	if err := h.run(ctx, func() {
		key = h.memory.IDKey([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	}); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash. The parameters are read from encoded, so hashes made before the
// parameters were raised keep verifying; rehash is true when password
// matches and those parameters are weaker than h's, so the caller should
// store a fresh Hash. The comparison is constant-time. err is non-nil when
// encoded is malformed (without running argon2) or when ctx ends while
// waiting for a slot.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok bool, rehash bool, err error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	var got []byte
	if err := h.run(ctx, func() {
		got = h.memory.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	}); err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p.weakerThan(h.params), nil
}

// VerifyDummy does the work of a Verify that fails, against a fixed hash
// with h's parameters, and returns only ctx's error. Call it when no account
// has the given address, so that the response takes as long as for a wrong
// password and its timing does not reveal whether the account exists.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// randomBytes returns n bytes from crypto/rand, which never fails (it
// crashes the program rather than return an error).
func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var phcBase64 = base64.RawStdEncoding.Strict()

// encodePHC formats an argon2id hash as a PHC string.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		phcBase64.EncodeToString(salt), phcBase64.EncodeToString(key))
}

// parsePHC parses a string made by encodePHC. It accepts only the
// canonical form (fields in order, decimal numbers without leading zeros,
// canonical base64), so a successful parse re-encodes to the same string.
// It checks sizes before allocating and never panics.
func parsePHC(s string) (p Params, salt, key []byte, err error) {
	fail := func(format string, args ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("malformed argon2id hash: "+format, args...)
	}
	if len(s) > phcMaxLen {
		return fail("longer than %d bytes", phcMaxLen)
	}
	// "$argon2id$v=19$m=…,t=…,p=…$salt$key" splits into 6 parts, the first empty.
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return fail("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("unsupported version (want v=%d)", argon2.Version)
	}

	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want parameters m, t and p")
	}
	var vals [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return fail("parameter %d is not %s", i+1, name)
		}
		n, ok := parsePHCUint(v)
		if !ok {
			return fail("parameter %s is not a decimal number", name)
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return fail("parameter p out of range")
	}
	p = Params{Memory: vals[0], Time: vals[1], Threads: uint8(vals[2])}

	salt, ok := decodePHCBase64(parts[4], phcMaxSaltLen)
	if !ok {
		return fail("salt is not canonical unpadded base64 of at most %d bytes", phcMaxSaltLen)
	}
	key, ok = decodePHCBase64(parts[5], phcMaxKeyLen)
	if !ok {
		return fail("key is not canonical unpadded base64 of at most %d bytes", phcMaxKeyLen)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return fail("%w", err)
	}
	return p, salt, key, nil
}

// parsePHCUint parses a decimal number of at most 10 digits without sign or
// leading zeros that fits in a uint32.
func parsePHCUint(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// decodePHCBase64 decodes canonical unpadded standard base64 of at most
// maxLen bytes. The alphabet is checked by hand because the decoder skips
// CR and LF even in strict mode.
func decodePHCBase64(s string, maxLen int) ([]byte, bool) {
	if s == "" || phcBase64.DecodedLen(len(s)) > maxLen {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, false
		}
	}
	b, err := phcBase64.DecodeString(s)
	return b, err == nil
}
