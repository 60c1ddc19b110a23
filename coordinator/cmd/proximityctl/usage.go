package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/internal/buildinfo"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit); --version prints them.
var (
	version = "dev"
	commit  string
)

// usageError is a command line proximityctl does not understand: exit 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

// finishTree sets what every command shares once the tree is built:
// --version on the root, names and completion (names.go), and parents
// that refuse what they do not know.
func finishTree(e *env, root *cobra.Command) {
	root.Version = buildinfo.String(version, commit)
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	wireNames(e, root)
	refuseUnknown(root)
}

// refuseUnknown gives every parent command (one with subcommands and no
// Run of its own) a Run that shows its help when called alone and refuses
// anything else as an unknown command, with suggestions. Without it cobra
// takes `app delet X` as arguments of `app`, shows the help and exits 0.
// The root refuses unknown commands by itself (cobra's legacy check).
func refuseUnknown(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknown(sub)
	}
	// Typos within two edits are suggested (cobra's default, which it
	// applies only to the root's own check).
	c.SuggestionsMinimumDistance = 2
	if !c.HasParent() || !c.HasSubCommands() {
		return
	}
	if c.Runnable() {
		// A parent that runs by itself (audit): arguments it refuses are
		// taken for a mistyped subcommand.
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := check(cmd, args)
				if err != nil && len(args) > 0 {
					return unknownCommand(cmd, args[0])
				}
				return err
			}
		}
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownCommand(cmd, args[0])
	}
}

// unknownCommand is the usage error for name under cmd, with the
// subcommands it may have meant.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return &usageError{msg + "\n\nRun '" + cmd.CommandPath() + " --help' for usage."}
}
