package io.quiesce.bench.netty;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.unix.UnixChannelOption;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.quiesce.bench.Args;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The ordinary Netty 4.2 native server set-up shared by the Netty peers: one
 * {@link MultiThreadIoEventLoopGroup} of {@code --threads} event loops that serves both the
 * listener and the accepted channels, TCP_NODELAY on accepted channels, the default (adaptive,
 * pooled) allocator. {@code --transport epoll} (the default) uses {@link EpollIoHandler} and
 * {@link EpollServerSocketChannel}; {@code --transport io_uring} uses {@link IoUringIoHandler}
 * with its default configuration and {@link IoUringServerSocketChannel}. Either transport that
 * is not available stops the server with its cause instead of falling back to the other. With
 * {@code --reuseport} it binds one SO_REUSEPORT listener per event loop instead of one
 * listener for all.
 */
final class NettyServer {

    private NettyServer() {}

    static void run(Args args, ChannelHandler childInitializer) throws InterruptedException {
        EventLoopGroup group;
        ChannelFactory<? extends ServerChannel> listener;
        if (args.transport() == Args.Transport.IO_URING) {
            // IPv4 sockets like the other peers: the io_uring server channel has no protocol-family
            // constructor, and opens dual-stack IPv6 sockets unless the IPv4 stack is preferred.
            System.setProperty("java.net.preferIPv4Stack", "true");
            IoUring.ensureAvailability();
            System.out.println(IoUring.featureString()); // what this kernel gave Netty, for the record
            group = new MultiThreadIoEventLoopGroup(args.threads(), IoUringIoHandler.newFactory());
            listener = IoUringServerSocketChannel::new;
        } else {
            Epoll.ensureAvailability();
            group = new MultiThreadIoEventLoopGroup(args.threads(), EpollIoHandler.newFactory());
            // IPv4 sockets like the other peers (Netty would otherwise open dual-stack IPv6 ones)
            listener = () -> new EpollServerSocketChannel(SocketProtocolFamily.INET);
        }
        try {
            ServerBootstrap b = new ServerBootstrap()
                    .group(group)
                    .channelFactory(listener)
                    .option(ChannelOption.SO_BACKLOG, 4096)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childHandler(childInitializer);
            int listeners = 1;
            if (args.reusePort()) {
                b.option(UnixChannelOption.SO_REUSEPORT, true);
                listeners = args.threads();
            }
            List<Channel> bound = new ArrayList<>();
            int port = args.port();
            for (int i = 0; i < listeners; i++) {
                Channel ch = b.bind(new InetSocketAddress("127.0.0.1", port)).sync().channel();
                port = ((InetSocketAddress) ch.localAddress()).getPort();
                bound.add(ch);
            }
            Args.ready(port, args.threads(), args.transport());
            for (Channel ch : bound) ch.closeFuture().sync(); // until SIGTERM ends the JVM
        } finally {
            group.shutdownGracefully();
        }
    }
}
