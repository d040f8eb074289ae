package io.quiesce.bench.netty;

import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.SocketChannel;
import io.quiesce.bench.Args;

/**
 * Netty native echo server (epoll, or io_uring with {@code --transport io_uring}): every inbound buffer is written back as it arrives and
 * flushed once per read batch ({@code channelReadComplete}). Reading pauses while the
 * channel is not writable, so a client that does not read cannot make the server buffer
 * without bound.
 */
public final class NettyEchoServer {

    @Sharable
    static final class EchoHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ctx.write(msg, ctx.voidPromise());
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            ctx.flush();
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            ctx.channel().config().setAutoRead(ctx.channel().isWritable());
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close(); // resets are routine under load; nothing is logged per connection
        }
    }

    public static void main(String[] argv) throws InterruptedException {
        Args args = Args.parse("NettyEchoServer", 9000, argv);
        EchoHandler echo = new EchoHandler();
        NettyServer.run(args, new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
                ch.pipeline().addLast(echo);
            }
        });
    }
}
