package store

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable means the database could not be reached or did not
	// answer in time; the request may succeed later.
	ErrUnavailable = errors.New("store: database unavailable")
)

// interpret translates driver errors into the package's own, keeping the
// original in the chain for logs.
func interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return errors.Join(ErrConflict, err)
		case pgErr.Code == "57014", // query_canceled (statement_timeout)
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, cannot connect now
			pgErr.Code[:2] == "08", // connection exceptions
			pgErr.Code == "53300":  // too_many_connections
			return errors.Join(ErrUnavailable, err)
		}
		return err
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		// The connection ended without a word from the server (it crashed,
		// the network broke), or broke earlier and was used again.
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}
