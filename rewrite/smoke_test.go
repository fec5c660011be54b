package rewrite

import (
	"fmt"
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	a := newTestAnalyzer(t)
	sql := os.Getenv("Q")
	if sql == "" {
		t.Skip()
	}
	p := plan(t, a, sql)
	for _, l := range summary(sql, p) {
		fmt.Println(l)
	}
	for _, r := range p.Rejections() {
		fmt.Println(r.Error())
	}
}
