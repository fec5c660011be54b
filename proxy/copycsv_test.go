package proxy

import (
	"bytes"
	"strings"
	"testing"
)

func TestCopyCSVIn(t *testing.T) {
	pc := &policyColumn{}
	tests := []struct {
		name       string
		opts       [4]string // delimiter, quote, escape, null
		header     bool
		in, want   string
		wantOutput string // out() of want; "" means in
	}{
		{name: "plain", in: "1,Ann,a\n2,Bob,b\n", want: "1,\"[Ann]\",a\n2,\"[Bob]\",b\n"},
		{name: "quoted delimiter and newline", in: "1,\"A,n\nn\",a\n", want: "1,\"[A,n\nn]\",a\n"},
		{name: "doubled quote", in: "1,\"O\"\"Brien\",a\n", want: "1,\"[O\"\"Brien]\",a\n"},
		{name: "quote opens mid-field", in: "1,ab\"c,d\"e,a\n", want: "1,\"[abc,de]\",a\n"},
		{name: "unquoted empty is NULL", in: "1,,a\n", want: "1,,a\n"},
		{name: "quoted empty is a value", in: "1,\"\",a\n", want: "1,\"[]\",a\n"},
		{name: "CRLF", in: "1,Ann,a\r\n", want: "1,\"[Ann]\",a\r\n"},
		{name: "CR inside quotes is data", in: "1,\"A\rB\",a\n", want: "1,\"[A\rB]\",a\n"},
		{name: "last record without newline", in: "1,Ann,a", want: "1,\"[Ann]\",a"},
		{name: "header passes", header: true, in: "id,first_name,x\n1,Ann,a\n", want: "id,first_name,x\n1,\"[Ann]\",a\n"},
		{name: "end marker; what follows is dropped", in: "1,Ann,a\n\\.\n2,Bob,b\n", want: "1,\"[Ann]\",a\n\\.\n"},
		{name: "quoted end marker is data", in: "1,\"\\.\",a\n", want: "1,\"[\\.]\",a\n"},
		{name: "NULL string", opts: [4]string{"", "", "", "NULL"}, in: "1,NULL,a\n2,\"NULL\",b\n3,,c\n",
			want: "1,NULL,a\n2,\"[NULL]\",b\n3,\"[]\",c\n"},
		{name: "other delimiter, quote and escape", opts: [4]string{";", "'", "\\", ""}, in: "1;'it\\'s; \\\\ ok';a\n",
			want: "1;'[it\\'s; \\\\ ok]';a\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every split into two messages gives the same bytes.
			for cut := 0; cut <= len(tc.in); cut++ {
				cc, err := newCopyCSV(tc.opts[0], tc.opts[1], tc.opts[2], tc.opts[3], tc.header, []*policyColumn{nil, pc, nil})
				if err != nil {
					t.Fatal(err)
				}
				out, err := cc.in(nil, []byte(tc.in[:cut]), false, rot)
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if out, err = cc.in(out, []byte(tc.in[cut:]), true, rot); err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if string(out) != tc.want {
					t.Fatalf("cut %d: got %q, want %q", cut, out, tc.want)
				}
			}
		})
	}
}

func TestCopyCSVOut(t *testing.T) {
	pc := &policyColumn{}
	cc, _ := newCopyCSV("", "", "", "", true, []*policyColumn{nil, pc})
	var got []byte
	for _, row := range []string{"id,body\n", "1,[plain]\n", "2,\"[a,b]\"\n", "3,\n", "4,[]\n", "5,\"[say \"\"hi\"\"]\"\n", "6,\"[two\nlines]\"\n"} {
		var err error
		if got, err = cc.out(got, []byte(row), unrot); err != nil {
			t.Fatalf("%q: %v", row, err)
		}
	}
	want := "id,body\n1,plain\n2,\"a,b\"\n3,\n4,\"\"\n5,\"say \"\"hi\"\"\"\n6,\"two\nlines\"\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCopyCSVRefuses(t *testing.T) {
	pc := &policyColumn{}
	tests := []struct{ name, in, want string }{
		{"bare CR", "1,A\rB,a\n", "carriage return"},
		{"CR line ends", "1,A,a\r2,B,b\r", "carriage return"},
		{"field count", "1,A\n", "2 fields where the COPY lists 3"},
		{"unclosed quote at the end", "1,\"A,a\n", "inside a quoted CSV field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc, _ := newCopyCSV("", "", "", "", false, []*policyColumn{nil, pc, nil})
			_, err := cc.in(nil, []byte(tc.in), true, rot)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := newCopyCSV(",", ",", "", "", false, nil); err == nil {
		t.Fatal("DELIMITER equal to QUOTE accepted")
	}
}

// FuzzCopyCSV: whatever the client sends, split anywhere, every policy
// field PostgreSQL would read from the output is an envelope (or NULL).
func FuzzCopyCSV(f *testing.F) {
	f.Add([]byte("1,Ann,a\n2,\"B,\"\"o\nb\",b\n"), 5, byte(','), byte('"'), byte('"'))
	f.Add([]byte("1;'x\\'y';z\n"), 3, byte(';'), byte('\''), byte('\\'))
	f.Add([]byte("a,b,c\r\n\\.\nx,y,z\n"), 1, byte(','), byte('"'), byte('"'))
	f.Fuzz(func(t *testing.T, data []byte, cut int, delim, quote, escape byte) {
		pc := &policyColumn{}
		cols := []*policyColumn{nil, pc, nil}
		cc, err := newCopyCSV(string([]byte{delim}), string([]byte{quote}), string([]byte{escape}), "", false, cols)
		if err != nil {
			return
		}
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		out, err := cc.in(nil, data[:cut], false, rot)
		if err != nil {
			return
		}
		if out, err = cc.in(out, data[cut:], true, rot); err != nil {
			return
		}
		// Parse the output as the server would: each policy field is
		// NULL or a wrapped value.
		check, _ := newCopyCSV(string([]byte{delim}), string([]byte{quote}), string([]byte{escape}), "", false, cols)
		if _, err := check.in(nil, out, true, func(_ *policyColumn, dst, v []byte) ([]byte, error) {
			if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
				t.Fatalf("a policy field reaches the server as %q", v)
			}
			return append(dst, v...), nil
		}); err != nil && !bytes.Contains(out, []byte(`\.`)) {
			t.Fatalf("the rewritten stream does not parse: %v\n%q", err, out)
		}
	})
}
