// Command trivy-db-fixture writes a Trivy vulnerability database from YAML bolt fixtures, the way
// trivy-db's own tests do (pkg/dbtest.InitDB loads the fixtures with bolt-fixtures and opens the
// result with db.Init; that helper needs a *testing.T, so this program makes the same two calls).
// It also writes the metadata.json that trivy-db's build puts beside trivy.db, with the update
// times a test asks for, so a test can serve a fresh or an old database.
//
//	trivy-db-fixture -output DIR [-updated-at RFC3339] [-next-update RFC3339] FIXTURE.yaml...
//	trivy-db-fixture -version
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	fixtures "github.com/aquasecurity/bolt-fixtures"
	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	bolt "go.etcd.io/bbolt"
)

// The installer stamps a hash of this module's files here, to know when the cached build is stale.
var sourceHash = "unstamped"

func main() {
	showVersion := flag.Bool("version", false, "print the source hash this build was made from")
	output := flag.String("output", "", "folder to write trivy.db and metadata.json into")
	updatedAt := flag.String("updated-at", "", "UpdatedAt of metadata.json (RFC 3339); default now")
	nextUpdate := flag.String("next-update", "", "NextUpdate of metadata.json (RFC 3339); default 6 hours after UpdatedAt, as the DB is rebuilt")
	flag.Parse()
	if *showVersion {
		fmt.Printf("trivy-db-fixture %s\n", sourceHash)
		return
	}
	if *output == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: trivy-db-fixture -output DIR [-updated-at T] [-next-update T] FIXTURE.yaml...")
		os.Exit(2)
	}
	if err := run(*output, *updatedAt, *nextUpdate, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "trivy-db-fixture: %v\n", err)
		os.Exit(1)
	}
}

func run(output, updatedAt, nextUpdate string, fixtureFiles []string) error {
	updated, err := parseTime(updatedAt, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("-updated-at: %w", err)
	}
	next, err := parseTime(nextUpdate, updated.Add(6*time.Hour))
	if err != nil {
		return fmt.Errorf("-next-update: %w", err)
	}
	if err := os.MkdirAll(output, 0o755); err != nil {
		return err
	}
	dbPath := db.Path(output)
	if err := os.Remove(dbPath); err != nil && !os.IsNotExist(err) {
		return err
	}

	loader, err := fixtures.New(dbPath, fixtureFiles)
	if err != nil {
		return fmt.Errorf("reading fixtures: %w", err)
	}
	if err := loader.Load(); err != nil {
		return fmt.Errorf("loading fixtures: %w", err)
	}
	if err := loader.Close(); err != nil {
		return err
	}

	// Open it as Trivy will, and say what it holds.
	if err := db.Init(output); err != nil {
		return fmt.Errorf("the written database does not open: %w", err)
	}
	var buckets []string
	err = db.Config{}.Connection().View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			buckets = append(buckets, string(name))
			return nil
		})
	})
	if closeErr := db.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}

	meta := metadata.Metadata{Version: db.SchemaVersion, UpdatedAt: updated, NextUpdate: next}
	if err := metadata.NewClient(output).Update(meta); err != nil {
		return err
	}
	fmt.Printf("wrote %s (schema %d, %d buckets: %v) and %s\n", dbPath, db.SchemaVersion, len(buckets), buckets, filepath.Join(output, "metadata.json"))
	return nil
}

func parseTime(value string, fallback time.Time) (time.Time, error) {
	if value == "" {
		return fallback, nil
	}
	return time.Parse(time.RFC3339, value)
}
