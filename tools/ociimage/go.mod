module github.com/relayq/relayq/tools/ociimage

go 1.24
