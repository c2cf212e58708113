package explain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteTextQuotesHostileValues checks that claim names and values,
// identity values and header values cannot put control characters on the
// terminal.
func TestWriteTextQuotesHostileValues(t *testing.T) {
	r := &Report{
		Outcome: Forward,
		Source: Source{Credential: "bearer token", Claims: map[string]json.RawMessage{
			"name\u009b":   json.RawMessage(`"esc\u001b[31m"`),
			"c1":           json.RawMessage("\"csi\u009b2J del\u007f\""),
			"astral\u200b": json.RawMessage(`["😀"]`),
		}},
		Checks:   []Check{{Rule: "r", Result: Pass}},
		Identity: &Identity{Username: "alice\u001b]0;x\u0007", Groups: []string{"g\u009b"}},
		Headers:  []Header{{Name: "X-Remote-User", Value: "bob\u009b"}},
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"\u001b", "\u009b", "\u007f", "\u0007", "\u200b"} {
		if strings.Contains(b.String(), c) {
			t.Errorf("output contains %q:\n%s", c, b.String())
		}
	}
	for _, want := range []string{`"alice\x1b]0;x\a"`, `"g\u009b"`, `"csi\u009b2J del\u007f"`, "😀"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, b.String())
		}
	}
}

// TestWriteJSONEmptyLists checks that lists are [] rather than null.
func TestWriteJSONEmptyLists(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, &Report{Outcome: Refuse, Status: 401}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["checks"] == nil || got["headers"] == nil || got["status"] != 401.0 || got["outcome"] != Refuse {
		t.Errorf("JSON = %s", b.String())
	}
}
