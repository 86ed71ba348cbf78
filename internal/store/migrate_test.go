package store_test

import (
	"context"
	"testing"
	"time"

	"signup/internal/store/storetest"
)

// ternLock is the advisory lock tern takes around a migration run.
const ternLock = int64(9628173550095224)

func TestMigrateOnACurrentSchemaWaitsForNoMigrator(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	// Another instance holds the migration lock, as while it migrates to
	// a schema this binary does not know yet.
	other, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, ternLock); err != nil {
		t.Fatal(err)
	}
	defer other.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, ternLock) //nolint:errcheck // the session ends with the test

	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.Migrate(quick); err != nil {
		t.Fatalf("Migrate on a current schema, with the migration lock held elsewhere: %v", err)
	}
}

func TestMigrateRefusesASchemaNewerThanItsFiles(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	if _, err := db.Pool().Exec(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err == nil {
		t.Fatal("Migrate accepted a schema newer than its newest migration")
	}
}
