package track

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Traces of real sessions through the proxy (pgx, lib/pq, psql and
// node-postgres; recorded by go test ./test/e2e -run TestRecordTraces
// -record-traces), in pgproto3's trace format, replayed through the
// tracker. Each server message's placement is compared with the .golden
// file beside the trace; -update rewrites those after a deliberate change
// or a re-recording (then read the diff: the goldens name trace lines).

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the tracker's answers")

var clientTypes = map[string]byte{
	"Parse": 'P', "Bind": 'B', "Describe": 'D', "Execute": 'E', "Close": 'C', "Sync": 'S',
	"Query": 'Q', "FunctionCall": 'F',
	"Flush": 'H', "CopyData": 'd', "CopyDone": 'c', "CopyFail": 'f', "Terminate": 'X',
}

var serverTypes = map[string]byte{
	"ParseComplete": '1', "BindComplete": '2', "CloseComplete": '3', "ParameterDescription": 't',
	"RowDescription": 'T', "NoData": 'n', "DataRow": 'D', "CommandComplete": 'C',
	"EmptyQueryResponse": 'I', "PortalSuspended": 's', "ErrorResponse": 'E', "NoticeResponse": 'N',
	"NotificationResponse": 'A', "ParameterStatus": 'S', "ReadyForQuery": 'Z',
	"CopyInResponse": 'G', "CopyOutResponse": 'H', "CopyBothResponse": 'W', "CopyData": 'd',
	"CopyDone": 'c', "FunctionCallResponse": 'V',
}

// replay feeds a trace to a tracker and describes what it answered.
func replay(t *testing.T, trace []byte) []byte {
	var out bytes.Buffer
	kinds := map[int]Kind{}
	tr := New(func(line *int) { fmt.Fprintf(&out, "  skipped %s@%d\n", kinds[*line], *line) })
	sc := bufio.NewScanner(bytes.NewReader(trace))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			t.Fatalf("line %d: not a trace line: %q", line, sc.Text())
		}
		switch f[0] {
		case "F":
			typ, ok := clientTypes[f[1]]
			if !ok {
				t.Fatalf("line %d: unknown client message %q", line, f[1])
			}
			var target byte
			if typ == 'D' && len(f) > 3 && len(f[3]) > 1 {
				target = f[3][1] // "\t S \"name\""
			}
			if k := KindOf(typ, target); k != 0 {
				kinds[line] = k
				tr.Send(k, line)
			}
		case "B":
			typ, ok := serverTypes[f[1]]
			if !ok {
				t.Fatalf("line %d: unknown server message %q", line, f[1])
			}
			p, err := tr.Server(typ)
			if err != nil {
				t.Fatalf("line %d: %s: %v", line, f[1], err)
			}
			fmt.Fprintf(&out, "%d %s: %s\n", line, f[1], describe(p, tr))
		default:
			t.Fatalf("line %d: sender %q", line, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n := tr.Outstanding(); n != 0 {
		t.Fatalf("%d messages still unanswered at the end", n)
	}
	return out.Bytes()
}

func describe(p Place, tr *Tracker[int]) string {
	switch {
	case p.Async:
		return "async"
	case p.Unsolicited:
		return "unsolicited"
	}
	s := fmt.Sprintf("%s@%d", p.Kind, *tr.Current())
	if p.Last {
		s += " last"
	}
	if p.Failed {
		s += " failed"
	}
	switch p.Copy {
	case CopyIn:
		s += " copy-in"
	case CopyOut:
		s += " copy-out"
	case CopyBoth:
		s += " copy-both"
	}
	return s
}

func TestTraces(t *testing.T) {
	traces, err := filepath.Glob("testdata/*.trace")
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) == 0 {
		t.Fatal("no traces in testdata")
	}
	for _, path := range traces {
		t.Run(filepath.Base(path), func(t *testing.T) {
			trace, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := replay(t, trace)
			golden := strings.TrimSuffix(path, ".trace") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("%s line %d:\n got  %s\n want %s", golden, i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("%s: %d lines, want %d", golden, len(gl), len(wl))
			}
		})
	}
}
