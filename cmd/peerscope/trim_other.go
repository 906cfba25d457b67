//go:build !light || !linux

package main

func trimBinaryLater([]string) {}
