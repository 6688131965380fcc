package routing

import (
	"strings"
	"testing"
	"time"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes

func withSinks(sinks string) []byte {
	return append(DefaultTOML(), []byte("\n"+sinks)...)
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestSinkDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse(withSinks(`
[[sinks]]
name = "siem"
type = "webhook"
url = "https://siem.example/hook"
secret_env = "SIEM_SECRET"
pattern = "security.#"

[[sinks]]
name = "archive"
type = "file"
path = "/var/lib/chronicle/out"
format = "ocsf"
batch_size = 500
batch_wait = "1s"
rotate_bytes = 1048576
rotate_every = "10m"
`), "sinks.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResolveSecrets(env(map[string]string{"SIEM_SECRET": secret})); err != nil {
		t.Fatal(err)
	}
	s := c.Sink("siem")
	if s.Format != FormatChronicle || s.BatchSize != 100 || s.BatchWait != 200*time.Millisecond || s.Timeout != 10*time.Second ||
		s.BackoffMin != 100*time.Millisecond || s.BackoffMax != 30*time.Second || len(s.Secret) != 24 {
		t.Errorf("siem = %+v", s)
	}
	a := c.Sink("archive")
	if a.Pattern != "#" || a.Format != FormatOCSF || a.BatchSize != 500 || a.BatchWait != time.Second ||
		a.RotateBytes != 1<<20 || a.RotateEvery != 10*time.Minute {
		t.Errorf("archive = %+v", a)
	}
}

func TestSinkRefused(t *testing.T) {
	t.Parallel()
	webhook := "name = \"siem\"\ntype = \"webhook\"\nurl = \"https://siem.example/hook\"\nsecret_env = \"SIEM_SECRET\"\n"
	tests := []struct {
		name, sinks string
		env         map[string]string
		want        string
	}{
		{"UnknownType", "[[sinks]]\nname = \"x\"\ntype = \"kafka\"\n", nil, `sinks.toml: sinks[0] (x): type "kafka" is not webhook or file`},
		{"NoType", "[[sinks]]\nname = \"x\"\n", nil, "sinks[0] (x): type is required"},
		{"NoName", "[[sinks]]\ntype = \"file\"\npath = \"/tmp\"\n", nil, "sinks[0]: name is required"},
		{"UnknownFormat", "[[sinks]]\n" + webhook + "format = \"json\"\n", nil, `sinks[0] (siem): format "json" is not chronicle, cloudevents or ocsf`},
		{"NoURL", "[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nsecret_env = \"S\"\n", nil, "sinks[0] (siem): url is required"},
		{"BadURL", "[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"ftp://x/\"\nsecret_env = \"S\"\n", nil, "sinks[0] (siem): url must be http:// or https://"},
		{"NoPath", "[[sinks]]\nname = \"archive\"\ntype = \"file\"\n", nil, "sinks[0] (archive): path is required"},
		{"BadPattern", "[[sinks]]\n" + webhook + "pattern = \"Security.#\"\n", nil, `sinks[0] (siem): pattern "Security.#"`},
		{"NoSecretEnv", "[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"https://siem.example/hook\"\n", nil, "sinks[0] (siem): secret_env is required"},
		{"SecretUnset", "[[sinks]]\n" + webhook, map[string]string{}, "sinks[0] (siem): secret_env: the environment variable SIEM_SECRET is not set"},
		{"SecretNoPrefix", "[[sinks]]\n" + webhook, map[string]string{"SIEM_SECRET": "hunter2hunter2hunter2hunter2"}, `sinks[0] (siem): secret_env: SIEM_SECRET must start with "whsec_"`},
		{"SecretNotBase64", "[[sinks]]\n" + webhook, map[string]string{"SIEM_SECRET": "whsec_!!!"}, "SIEM_SECRET is not whsec_ followed by standard base64"},
		{"SecretShort", "[[sinks]]\n" + webhook, map[string]string{"SIEM_SECRET": "whsec_c2hvcnQ="}, "SIEM_SECRET must hold 24 to 64 bytes after whsec_, not 5"},
		{"Duplicate", "[[sinks]]\n" + webhook + "[[sinks]]\n" + webhook, map[string]string{"SIEM_SECRET": secret}, `sinks[1] (siem): duplicate sink name "siem"`},
		{"BadBatchWait", "[[sinks]]\n" + webhook + "batch_wait = \"soon\"\n", nil, `sinks[0] (siem): batch_wait "soon" is not a duration`},
		{"BadBatchSize", "[[sinks]]\n" + webhook + "batch_size = 5000\n", nil, "sinks[0] (siem): batch_size must be 1 to 1000, not 5000"},
		{"UnknownKey", "[[sinks]]\n" + webhook + "retries = 3\n", nil, "unknown key sinks.retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(withSinks(tt.sinks), "sinks.toml")
			if err == nil {
				err = c.ResolveSecrets(env(tt.env))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "sinks.toml") {
				t.Fatalf("got %v, want an error naming sinks.toml and containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}
