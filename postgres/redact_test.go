package postgres

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"UserInfo", "postgres://alice:s3cret@db:5432/chronicle?sslmode=disable", "postgres://alice:xxxxx@db:5432/chronicle?sslmode=disable"},
		{"QueryParameter", "postgresql://db/chronicle?user=alice&password=s3cret", "postgresql://db/chronicle?password=xxxxx&user=alice"},
		{"NoPassword", "postgres://alice@db/chronicle", "postgres://alice@db/chronicle"},
		{"KeywordValue", "host=db user=alice password=s3cret dbname=chronicle", "host=db user=alice password=xxxxx dbname=chronicle"},
		{"KeywordValueQuoted", "host=db password = 's3 cr\\'et' dbname=chronicle", "host=db password = xxxxx dbname=chronicle"},
		{"Unparsable", "postgres://alice:s3cret@db:port/chronicle", "(not shown: it cannot be parsed, and may contain a password)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redactURL(tt.in)
			if got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3") {
				t.Errorf("redactURL(%q) shows the password: %q", tt.in, got)
			}
		})
	}
}
