print("swiftkvm")
