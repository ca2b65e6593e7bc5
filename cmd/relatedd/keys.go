package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/sqlite"
)

const keysUsage = `usage:
  relatedd keys create --tenant T --role admin|agent|partner|integration [--name N]   print a new key, once
  relatedd keys list [--tenant T]                                          list keys (never their secrets)
  relatedd keys revoke ID                                                  revoke a key: it stops working within seconds
Every subcommand also takes the global flags (--data-dir, --mongodb-uri, --db).`

// keyDB is a key store the keys command opened, with its closer.
type keyDB interface {
	store.KeyStore
	Close() error
}

// openKeys opens the configured database for the keys command. It does not
// share openStore: the command needs only the keys and no live updates.
func openKeys(ctx context.Context, c config, log *slog.Logger) (keyDB, error) {
	if c.mongoURI != "" {
		return mongo.Open(ctx, mongo.Options{URI: c.mongoURI, Database: c.db, Logger: log})
	}
	return sqlite.Open(ctx, sqlite.Options{Dir: c.dataDir, Logger: log})
}

// keysCmd runs relatedd keys create|list|revoke.
func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, keysUsage)
		if len(args) == 0 {
			return errors.New("keys: a subcommand is required")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var c config
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	var tenant, role, name string
	switch sub {
	case "create":
		fs.StringVar(&tenant, "tenant", "", "the tenant the key reads and writes (required)")
		fs.StringVar(&role, "role", "", "admin, agent, partner or integration (required)")
		fs.StringVar(&name, "name", "", "a label for listings, such as who holds the key")
	case "list":
		fs.StringVar(&tenant, "tenant", "", "list only this tenant's keys")
	case "revoke":
	default:
		fmt.Fprintln(stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q", sub)
	}
	// Flags may come after the positional key id: parse around it.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch sub {
	case "create":
		if len(pos) > 0 {
			return fmt.Errorf("keys create: unexpected argument %q", pos[0])
		}
		if tenant == "" || role == "" {
			return errors.New("keys create: --tenant and --role are required")
		}
		secret, k, err := store.NewKey(tenant, role, name, time.Now())
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		db, err := openKeys(ctx, c, log)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.CreateKey(ctx, k); err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(stdout, "Created key %s (tenant %q, role %s). It is shown this once; only its hash is stored:\n\n    %s\n\nSend it as the header  Authorization: Bearer %s\n", k.ID, k.Tenant, k.Role, secret, secret)
		return nil
	case "list":
		if len(pos) > 0 {
			return fmt.Errorf("keys list: unexpected argument %q", pos[0])
		}
		db, err := openKeys(ctx, c, log)
		if err != nil {
			return err
		}
		defer db.Close()
		keys, err := db.ListKeys(ctx, tenant)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		printKeys(stdout, keys)
		return nil
	default: // revoke
		if len(pos) != 1 {
			return errors.New("keys revoke: give exactly one key id (see keys list)")
		}
		db, err := openKeys(ctx, c, log)
		if err != nil {
			return err
		}
		defer db.Close()
		return revokeKey(ctx, db, pos[0], stdout)
	}
}

// revokeKey revokes the key id of whichever tenant holds it: key ids are
// unique across tenants, and the operator should not need to know the
// tenant to stop a leaked key.
func revokeKey(ctx context.Context, db store.KeyStore, id string, stdout io.Writer) error {
	all, err := db.ListKeys(ctx, "")
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	for _, k := range all {
		if k.ID != id {
			continue
		}
		r, err := db.RevokeKey(ctx, k.Tenant, k.ID, time.Now())
		if err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(stdout, "Revoked key %s (tenant %q, role %s) at %s. Servers refuse it within seconds, open subscriptions included.\n",
			r.ID, r.Tenant, r.Role, r.RevokedAt.Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("keys revoke: no key %q", id)
}

func printKeys(w io.Writer, keys []*store.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tROLE\tNAME\tCREATED\tLAST USED\tREVOKED")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Role, k.Name, when(k.CreatedAt), when(k.LastUsedAt), when(k.RevokedAt))
	}
	tw.Flush()
}

// firstStartKey gives a new embedded database an admin key for the demo
// tenant and prints it once, with where to paste it: the two-command
// developer experience. A database that has ever had a key gets none, so
// revoking the printed key is final.
func firstStartKey(ctx context.Context, ks store.KeyStore, stdout io.Writer) error {
	existing, err := ks.ListKeys(ctx, "")
	if err != nil {
		return fmt.Errorf("first-start key: %w", err)
	}
	if len(existing) > 0 {
		return nil
	}
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAdmin, "first-start admin key", time.Now())
	if err != nil {
		return fmt.Errorf("first-start key: %w", err)
	}
	if err := ks.CreateKey(ctx, k); err != nil {
		return fmt.Errorf("first-start key: %w", err)
	}
	fmt.Fprintf(stdout, `
An admin API key for tenant %q was created. It is shown this ONCE (only its hash is stored):

    %s

GraphiQL and the agent console ask for it when they open. Any other client sends:

    Authorization: Bearer %s

More keys: relatedd keys create --tenant %s --role agent   (list: relatedd keys list; revoke: relatedd keys revoke ID)

`, server.DemoTenant, secret, secret, server.DemoTenant)
	return nil
}
