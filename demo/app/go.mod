module example.com/demo-web

go 1.22
