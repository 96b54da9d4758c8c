module example.com/fakekaniko

go 1.21
