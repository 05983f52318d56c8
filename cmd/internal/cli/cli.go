// Package cli is what the commands (dlb-agent, dlb-controller, dlbctl)
// share in reading their settings: one viper per command, taking each key
// from its flag, else the DLB_ environment variable (DLB_ + the key in
// upper case, e.g. DLB_STATE_DIR for --state-dir), else the config file,
// else the flag's default; and the log level.
//
// It owns: how a setting is named and found. It must not touch: what the
// settings mean (each command checks its own).
package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of the commands' environment variables.
const EnvPrefix = "DLB"

// Key is the config key of a flag: its name with _ for -.
func Key(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// Bind makes v read every flag of fs under its Key, with the DLB_
// environment variable of that key in between, except the flags named
// in skip (such as --config itself).
func Bind(v *viper.Viper, fs *pflag.FlagSet, skip ...string) {
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	fs.VisitAll(func(f *pflag.Flag) {
		for _, s := range skip {
			if f.Name == s {
				return
			}
		}
		_ = v.BindPFlag(Key(f.Name), f)
	})
}

// Load reads the YAML config file (if file is not empty) under what Bind
// bound, and decodes every setting into out (a struct whose fields carry
// mapstructure tags of the keys).
func Load(v *viper.Viper, file string, out any) error {
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("config file: %w", err)
		}
	}
	if err := v.Unmarshal(out); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Logger is a text logger on stderr at level (debug, info, warn or
// error); a bad level is an error naming log_level.
func Logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level: %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
