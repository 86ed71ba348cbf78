package store

import (
	"context"
	"fmt"

	"github.com/jackc/tern/v2/migrate"

	"signup/migrations"
)

// versionTable records the schema version; tern serialises concurrent
// migrators with a PostgreSQL advisory lock, so instances starting together
// are safe.
const versionTable = "public.schema_version"

// Migrate brings the schema up to the newest migration.
func (db *DB) Migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", interpret(err))
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return fmt.Errorf("migrate: %w", interpret(err))
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", interpret(err))
	}
	return nil
}

// SchemaVersion reports the applied migration number.
func (db *DB) SchemaVersion(ctx context.Context) (int32, error) {
	var v int32
	err := db.pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", interpret(err))
	}
	return v, nil
}
