package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type settings struct {
	StateDir string `mapstructure:"state_dir"`
	Zone     int    `mapstructure:"zone"`
	Config   string `mapstructure:"config"`
}

// TestPrecedence: flag, else DLB_ variable, else config file, else the
// flag's default; skipped flags are not settings.
func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("state_dir: /from/file\nzone: 7\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		env  string
		file string
		want settings
	}{
		{"defaults", nil, "", "", settings{StateDir: "/default", Zone: 1}},
		{"file", nil, "", file, settings{StateDir: "/from/file", Zone: 7}},
		{"env over file", nil, "/from/env", file, settings{StateDir: "/from/env", Zone: 7}},
		{"flag over env", []string{"--state-dir", "/from/flag"}, "/from/env", file, settings{StateDir: "/from/flag", Zone: 7}},
		{"skipped flag", []string{"--config", "x"}, "", "", settings{StateDir: "/default", Zone: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DLB_STATE_DIR", tc.env)
			}
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.String("state-dir", "/default", "")
			fs.Int("zone", 1, "")
			fs.String("config", "", "")
			require.NoError(t, fs.Parse(tc.args))
			v := viper.New()
			Bind(v, fs, "config")
			var got settings
			require.NoError(t, Load(v, tc.file, &got))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLoadAndLoggerErrors(t *testing.T) {
	var s settings
	err := Load(viper.New(), filepath.Join(t.TempDir(), "missing.yaml"), &s)
	assert.ErrorContains(t, err, "config file")
	_, err = Logger("loud")
	assert.ErrorContains(t, err, `log_level: "loud"`)
	l, err := Logger("debug")
	require.NoError(t, err)
	assert.NotNil(t, l)
}
