package io.quiesce.bench.netty;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.quiesce.bench.Args;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The ordinary Netty 4.2 native-epoll server set-up shared by the Netty peers: one
 * {@link MultiThreadIoEventLoopGroup} of {@code --threads} epoll event loops that serves both
 * the listener and the accepted channels, {@link EpollServerSocketChannel}, TCP_NODELAY on
 * accepted channels, the default (adaptive, pooled) allocator. With {@code --reuseport} it
 * binds one SO_REUSEPORT listener per event loop instead of one listener for all.
 */
final class NettyServer {

    private NettyServer() {}

    static void run(Args args, ChannelHandler childInitializer) throws InterruptedException {
        Epoll.ensureAvailability();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(args.threads(), EpollIoHandler.newFactory());
        try {
            ServerBootstrap b = new ServerBootstrap()
                    .group(group)
                    // IPv4 sockets like the other peers (Netty would otherwise open dual-stack IPv6 ones)
                    .channelFactory(() -> new EpollServerSocketChannel(SocketProtocolFamily.INET))
                    .option(ChannelOption.SO_BACKLOG, 4096)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childHandler(childInitializer);
            int listeners = 1;
            if (args.reusePort()) {
                b.option(EpollChannelOption.SO_REUSEPORT, true);
                listeners = args.threads();
            }
            List<Channel> bound = new ArrayList<>();
            int port = args.port();
            for (int i = 0; i < listeners; i++) {
                Channel ch = b.bind(new InetSocketAddress("127.0.0.1", port)).sync().channel();
                port = ((InetSocketAddress) ch.localAddress()).getPort();
                bound.add(ch);
            }
            Args.ready(port, args.threads());
            for (Channel ch : bound) ch.closeFuture().sync(); // until SIGTERM ends the JVM
        } finally {
            group.shutdownGracefully();
        }
    }
}
