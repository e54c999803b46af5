package harness

import (
	"reflect"
	"testing"
)

func TestContextTransfers(t *testing.T) {
	out := `#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 58B done
#1 DONE 0.0s
#2 [internal] load .dockerignore
#2 transferring context: 2B done
#3 [internal] load build context
#3 transferring context: 10.49MB 0.5s
#3 transferring context: 52.43MB 0.9s done
#3 DONE 1.0s
#2 [internal] load .dockerignore
#2 transferring context: 2B done
#3 [internal] load build context
#3 transferring context: 1.68kB done
#3 DONE 0.0s
#7 [internal] load build context
#7 transferring context: 30B done
`
	want := []Transfer{{52_430_000, 0.9}, {1680, 0}, {30, 0}}
	if got := ContextTransfers(out); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
