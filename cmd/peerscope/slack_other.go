//go:build !linux

package main

func setTimerSlack([]string) error { return nil }
