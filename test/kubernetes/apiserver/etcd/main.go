// Command etcd is the etcd server at the version k8s.io/kubernetes itself requires, built in
// this module so that it shares the kube-apiserver's dependencies (and their compiled packages).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
