package store

import "time"

// quotaCTE is a CTE named quota that takes one turn of an address's mail
// limits (table mail_quota) and returns one row, allowed: whether an email
// may be sent. The arguments are SQL expressions: addr the limit key,
// kind the limit kind, now a timestamptz, cooldown an interval, dailyCap an
// integer.
//
// Every turn writes the address's row, allowed or not, in one upsert: the
// row lock serialises concurrent turns for one address, across instances,
// and a request that is refused does the same work as one that is not, so
// its timing says nothing.
func quotaCTE(addr, kind, now, cooldown, dailyCap string) string {
	newDay := `q.day_start <= ` + now + ` - interval '1 day'`
	ok := `((` + newDay + `) OR q.day_count < ` + dailyCap + `)
			   AND (NOT q.last_sent ? ` + kind + ` OR (q.last_sent ->> ` + kind + `)::timestamptz <= ` + now + ` - ` + cooldown + `)`
	return `quota AS (
		INSERT INTO mail_quota AS q (address, day_start, day_count, last_sent, allowed, updated_at)
		VALUES (` + addr + `, ` + now + `, 1, jsonb_build_object(` + kind + `, ` + now + `), ` + dailyCap + ` > 0, ` + now + `)
		ON CONFLICT (address) DO UPDATE SET
			allowed = ` + ok + `,
			day_start = CASE WHEN ` + newDay + ` THEN ` + now + ` ELSE q.day_start END,
			day_count = CASE WHEN ` + newDay + ` THEN 0 ELSE q.day_count END + CASE WHEN ` + ok + ` THEN 1 ELSE 0 END,
			last_sent = CASE WHEN ` + ok + ` THEN q.last_sent || jsonb_build_object(` + kind + `, ` + now + `) ELSE q.last_sent END,
			updated_at = ` + now + `
		RETURNING allowed)`
}

// micros is d in whole microseconds, for `$n::bigint * interval '1
// microsecond'`.
func micros(d time.Duration) int64 { return d.Microseconds() }
