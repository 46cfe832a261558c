package ipc

const envParentHelper = "IPC_TEST_PARENT_HELPER"

func parentHelper() int { return 0 }
