// Command etcd is the etcd server at the version pinned in go.mod; see go.mod
// for why it is wrapped instead of installed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
