//go:build !linux

package main

func trimBinaryLater([]string) {}
