model = dict()
prototypes = dict(file='x')
work_dir = 'x.work'
