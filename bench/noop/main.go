// Command noop is the exec floor of start-up figures: an empty static Go
// binary. Its run time is what any Go program pays before main.
package main

func main() {}
