// Command etcd is etcd's own server main, built from the pinned module so that the test bed needs
// nothing beyond the Go module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
